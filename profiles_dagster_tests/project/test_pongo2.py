"""pb's templates as pongo2 reads them: each construct rendered, expected values worked out by hand.

The expected values follow pongo2's Go code (parser_expression.go, value.go, filters_builtin.go):
the comment beside each says why. pb 0.26.4 (`pb show models`) accepts every template rendered here
and rejects the ones in the syntax-error tests with the same complaint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from profiles_dagster.errors import ProfilesError
from profiles_dagster.project.loader import load_project
from profiles_dagster.project.pongo2 import Pongo2SyntaxError, translate
from profiles_dagster.project.templating import Macro, MacroError, TemplateContext, find_references, render


def ctx(**values: object) -> TemplateContext:
    return TemplateContext(
        entities=("user",),
        resolve_var=lambda entity, name: f"{entity}__{name}",
        deref=lambda path: path.replace("/", "_"),
        database_type="snowflake",
        values=values,
    )


def out(text: str, **values: object) -> str:
    return render(text, ctx(**values))


# ---- with ----------------------------------------------------------------------------------------


def test_with_several_assignments_separated_by_spaces() -> None:
    text = (
        '{% with Tracks = this.DeRef("inputs/tracks") Pages = this.DeRef("inputs/pages") %}'
        "{{ Tracks }} {{ Pages }}{% endwith %}"
    )
    assert out(text) == "inputs_tracks inputs_pages"


def test_with_old_style_as() -> None:
    assert out('{% with "a" as A "b" as B %}{{ A }}{{ B }}{% endwith %}') == "ab"


def test_with_values_are_read_before_any_is_assigned() -> None:
    # pongo2 evaluates every pair in the outer context: B sees the outer A (1), not the new one
    assert out("{% with A = 2 B = A %}{{ A }}{{ B }}{% endwith %}", A=1) == "21"


def test_with_and_jinja_commas_is_a_syntax_error_as_in_pb() -> None:
    # pb: "Expected an identifier" near ','
    with pytest.raises(ProfilesError, match="expected a name, got ','"):
        out("{% with a = 1, b = 2 %}{{ a }}{% endwith %}")


# ---- operators -----------------------------------------------------------------------------------


def test_not_spelled_bang_and_not() -> None:
    assert out("{% if !x %}A{% endif %}{% if not x %}B{% endif %}{% if !y %}C{% endif %}", x="", y="v") == "AB"


def test_bang_negates_only_its_operand_before_comparing() -> None:
    # pongo2: (!"b") == "c" -> false == "c" -> False; Jinja's `not ("b" == "c")` would say True
    assert out('{{ !"b" == "c" }}') == "False"


def test_bang_keeps_the_kind_of_a_number() -> None:
    # Value.Negate: a non-zero int gives 0, zero gives 1, a zero float gives 1.1 (printed %f)
    assert out("{{ !3 }} {{ !0 }} {{ !0.0 }}") == "0 1 1.100000"


def test_and_or_symbols_and_words() -> None:
    text = (
        "{% if a && b %}1{% endif %}{% if a || b %}2{% endif %}{% if a and c %}3{% endif %}{% if c or a %}4{% endif %}"
    )
    assert out(text, a=True, b=False, c=1) == "234"


def test_and_or_share_one_precedence_grouped_to_the_right() -> None:
    # pongo2: false and (true or true) -> False; Jinja's (false and true) or true would be True
    assert out("{{ false and true or true }}") == "False"
    # true || (false && false) -> True
    assert out("{{ true || false && false }}") == "True"


def test_and_or_give_booleans() -> None:
    assert out('{{ "x" || "" }} {{ "x" && 5 }}') == "True True"


def test_comparisons() -> None:
    assert out("{{ 1 == 1 }} {{ 1 != 2 }} {{ 1 <> 1 }} {{ 2 > 1 }} {{ 2 >= 3 }} {{ 1 < 2 }} {{ 2 <= 2 }}") == (
        "True True False True False True True"
    )


def test_equality_is_by_type_and_value() -> None:
    # EqualValueTo: 1 (int) and 1.0 (float) differ; "1" and 1 differ
    assert out('{{ 1 == 1.0 }} {{ "1" == 1 }} {{ "a" == "a" }}') == "False False True"


def test_ordering_compares_numbers() -> None:
    # "10" < "9" compares the integers 10 < 9 in pongo2, not the strings
    assert out('{{ "10" < "9" }}') == "False"


def test_database_type_comparison_in_if_elif() -> None:
    text = (
        "{% if warehouse.DatabaseType() == \"bigquery\" %}bq{% elif warehouse.DatabaseType() == 'snowflake' %}sf"
        "{% else %}other{% endif %}"
    )
    assert out(text) == "sf"
    either = '{% if warehouse.DatabaseType() == "redshift" || warehouse.DatabaseType() == "snowflake" %}y{% endif %}'
    assert out(either) == "y"


def test_in() -> None:
    assert out('{{ "a" in "cat" }} {{ "z" in "cat" }} {{ 2 in xs }} {{ "k" in m }}', xs=[1, 2], m={"k": 1}) == (
        "True False True True"
    )


def test_arithmetic() -> None:
    # integers stay integers (Go's division truncates toward zero, % keeps the dividend's sign)
    assert out("{{ 7 / 2 }} {{ -7 / 2 }} {{ -7 % 3 }} {{ 2 + 3 * 4 }} {{ (2 + 3) * 4 }} {{ -2 + 5 }}") == (
        "3 -3 -1 14 20 3"
    )
    # a float makes the result a float, printed with %f; ^ is always a float
    assert out("{{ 1.5 + 1 }} {{ 2 ^ 3 }}") == "2.500000 8.000000"


def test_output_of_nil_bool_and_float() -> None:
    assert out("[{{ nothing }}] {{ yes }} {{ half }}", nothing=None, yes=True, half=0.5) == "[] True 0.500000"


def test_string_literals_in_both_quotes_with_pongo2_escapes() -> None:
    assert out("{{ 'it' }} {{ \"say \\\"hi\\\"\" }} {{ 'a\\\\b' }}") == 'it say "hi" a\\b'


def test_operators_inside_string_literals_stay_text() -> None:
    assert out('{{ "!x || y && z" }}') == "!x || y && z"
    assert out("{% if x %}{{ 'a %} b' }}{% endif %}", x=1) == "a %} b"


# ---- filters -------------------------------------------------------------------------------------


def test_isnil_under_bang() -> None:
    text = "{% if !(end_time|isnil) %}has end{% else %}no end{% endif %}"
    assert out(text, end_time="2025-01-01") == "has end"
    assert out(text, end_time=None) == "no end"


def test_filters_with_colon_arguments() -> None:
    assert out(
        '{{ ""|default:"d" }} {{ 0|default:"z" }} {{ "v"|default:"d" }} {{ nil|default_if_none:"n" }}', nil=None
    ) == ("d z v n")
    assert out('{{ "AbC"|lower }} {{ "AbC"|upper }} {{ "abc"|length }} {{ xs|length }}', xs=[1, 2]) == "abc ABC 3 2"
    assert out('{{ xs|join:", " }} {{ "abc"|join:"-" }}', xs=["a", "b"]) == "a, b a-b-c"
    assert out('{{ 5|stringformat:"%03d" }} {{ "x"|stringformat:"[%s]" }} {{ 2.5|stringformat:"%.2f" }}') == (
        "005 [x] 2.50"
    )
    assert out('{{ "abc"|first }}{{ "abc"|last }} {{ 3|add:4 }} {{ "x"|add:"y" }} {{ "a b c"|cut:" " }}') == (
        "ac 7 xy abc"
    )
    assert out('{{ "3.7"|integer }} {{ "2"|float }} {{ "x"|safe }}') == "3 2.000000 x"
    assert out('{{ "AbC"|lower|upper }}') == "ABC"


def test_unknown_filter_and_jinja_call_syntax_are_errors() -> None:
    with pytest.raises(ProfilesError, match="filter 'nosuch' is not supported"):
        out('{{ "x"|nosuch }}')
    with pytest.raises(ProfilesError, match="unexpected token after the expression, got '\\('"):
        out('{{ "x"|default("d") }}')  # pb: '}}' expected


def test_a_go_format_python_would_write_otherwise_is_an_error() -> None:
    with pytest.raises(ProfilesError, match="stringformat"):
        out('{{ "x"|stringformat:"%d" }}')  # Go writes %!d(string=x)


# ---- set, for, macro, comments -------------------------------------------------------------------


def test_set() -> None:
    assert out('{% set v = 2 %}{% set w = "s" %}{{ v }}{{ w }}') == "2s"


def test_for_over_a_list_a_string_and_a_map() -> None:
    assert out("{% for x in xs %}{{ forloop.Counter }}{{ x }}{% endfor %}", xs=["a", "b"]) == "1a2b"
    assert out('{% for c in "ab" %}{{ c }}.{% endfor %}') == "a.b."
    # key, value over a map: in sorted key order (Go's own order is random; sorted is one of its orders)
    assert out("{% for k, v in m %}{{ k }}={{ v }};{% endfor %}", m={"b": 2, "a": 1}) == "a=1;b=2;"
    assert out("{% for x in xs reversed %}{{ x }}{% endfor %}", xs=[1, 2, 3]) == "321"
    assert out("{% for x in xs sorted %}{{ x }}{% endfor %}", xs=[3, 1, 2]) == "123"
    assert out("{% for x in xs %}{{ x }}{% empty %}none{% endfor %}", xs=[]) == "none"
    text = "{% for x in xs %}{% if forloop.First %}[{% endif %}{{ x }}{% if forloop.Last %}]{% endif %}{% endfor %}"
    assert out(text, xs=[1, 2]) == "[12]"


def test_template_macro_with_default_and_export() -> None:
    text = '{% macro m(a, b="-") export %}{{ a }}{{ b }}{% endmacro %}{{ m("x") }}{{ m("y", "+") }}'
    assert out(text) == "x-y+"


def test_comments() -> None:
    assert out("a{# note #}b{% comment %}gone {{ nothing }}{% endcomment %}c") == "abc"
    with pytest.raises(ProfilesError, match="must close on its own line"):
        out("a{# two\nlines #}")


def test_whitespace_control() -> None:
    assert out("a  {%- if x -%}  b  {%- endif -%}  c", x=1) == "abc"


def test_var_references_and_nested_templates_in_macro_arguments() -> None:
    context = ctx()
    context.macros = {"datediff": (["a", "b"], "date_diff('day', {{ a }}, {{ b }})")}
    text = """{{ datediff('{{ user.Var("first") }}', "now()") }}"""
    assert render(text, context) == "date_diff('day', user__first, now())"
    refs = find_references(text, context)
    assert refs.vars == {("user", "first")}


def test_list_literal_in_call_arguments() -> None:
    assert out("{{ xs|length }} {{ f([1, 2]) }}", xs=[1], f=len) == "1 2"


# ---- errors pb gives too, located ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{{ "a"\n }}', "a newline is not allowed inside a tag"),
        ("{{ 'a\\'b' }}", "unknown escape sequence \\'"),
        ('{{ "a" not in "b" }}', "unexpected token after the expression, got 'not'"),
        ("{% exec %}x{% endexec %}", "pb's {% exec %} tag"),
        ("{% include 'x' %}", "{% include %} is not supported"),
        ("{% frobnicate %}", "unknown tag {% frobnicate %}"),
        ('{{ user.Var("x" }}', "expected ')', got the end of the tag"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(Pongo2SyntaxError) as info:
        translate(text)
    assert message in info.value.message


def test_error_names_the_line_of_a_multi_line_template() -> None:
    text = "select 1\nfrom t\nwhere {% if x || %}a{% endif %}\n"
    with pytest.raises(ProfilesError) as info:
        render(text, ctx(x=1), file="models/sql.yaml", line=10, key="models[0].model_spec.single_sql")
    err = info.value
    # a block scalar's first line sits below its key: template line 3 is file line 10 + 3
    assert (err.file, err.line, err.key) == ("models/sql.yaml", 13, "models[0].model_spec.single_sql")
    assert "line 3 of the template" in err.message


def test_error_on_a_one_line_template_is_at_its_key() -> None:
    with pytest.raises(ProfilesError) as info:
        render("{{ nowhere }}", ctx(), file="models/vars.yaml", line=7, key="var_groups[0].vars[0].entity_var.select")
    assert (info.value.line, info.value.message) == (7, "undefined in template: 'nowhere' is undefined")


def test_error_inside_a_macro_names_the_macro_file_and_line_and_the_caller() -> None:
    context = ctx()
    context.macros = {
        "broken": Macro(["a"], "x\ny {{ a || }}", file=Path("models/macros.yaml"), line=20, key="macros[3].value"),
        "undefined": Macro([], "{{ missing }}", file=Path("models/macros.yaml"), line=30, key="macros[4].value"),
    }
    with pytest.raises(MacroError) as info:
        render(
            "{{ broken(1) }}", context, file="models/vars.yaml", line=5, key="var_groups[0].vars[2].entity_var.select"
        )
    err = info.value
    assert (Path(err.file or ""), err.line, err.key) == (Path("models/macros.yaml"), 22, "macros[3].value")
    assert err.message.startswith("in macro 'broken': template syntax error (line 2 of the template)")
    assert err.hint == "called from models/vars.yaml:5 var_groups[0].vars[2].entity_var.select"

    with pytest.raises(MacroError) as info:
        render("{{ undefined }}", context, file="models/vars.yaml", line=6, key="k")
    assert (info.value.line, info.value.message) == (
        30,
        "in macro 'undefined': undefined in template: 'missing' is undefined",
    )


# ---- values pb itself computes -------------------------------------------------------------------

# Read back from pb 0.26.4: `{% with r = EXPR %}{{ user.Var("z"|add:r) }}{% endwith %}` in a var makes
# `pb show models` fail naming the model "z" + the value, as pongo2 prints it.
PB_OBSERVED = [
    ("!3", "0"),
    ("!0", "1"),
    ("!0.0", "1.100000"),
    ("!1.5", "0.000000"),
    ("1.5", "1.500000"),
    ("true || false && false", "True"),
    ("false and true or true", "False"),
    ('!"b" == "c"', "False"),
    ("1 == 1.0", "False"),
    ('"1" == 1', "False"),
    ("7 / 2", "3"),
    ("-7 / 2", "-3"),
    ("-7 % 3", "-1"),
    ("2 + 3 * 4", "14"),
    ('"10" < "9"', "False"),
    ("2 ^ 3", "8.000000"),
    ('"x" || ""', "True"),
    ('"x" && 5', "True"),
    ('""|default:"d"', "d"),
    ('0|default:"z"', "z"),
    ('5|stringformat:"%03d"', "005"),
    ('2.5|stringformat:"%.2f"', "2.50"),
    ('"3.7"|integer', "3"),
    ('"2"|float', "2.000000"),
    ('"a b c"|cut:" "', "abc"),
    ('"abc"|join:"-"', "a-b-c"),
    ('"abc"|length', "3"),
    ('"AbC"|lower|upper', "ABC"),
    ("3|add:4", "7"),
    ("1.5 + 1", "2.500000"),
    ('"a" in "cat"', "True"),
    ('!""', "True"),
    ("true", "True"),
    ("1 <> 1", "False"),
    ("-2 + 5", "3"),
    ("!1 == 0", "True"),
]


@pytest.mark.parametrize(("expression", "pb_value"), PB_OBSERVED)
def test_values_match_what_pb_computes(expression: str, pb_value: str) -> None:
    assert out("{% with r = " + expression + " %}{{ r }}{% endwith %}") == pb_value


def test_a_minus_after_an_operator_is_a_syntax_error_as_in_pb() -> None:
    # pb: "Expected either a number, string, keyword or identifier" near '-'
    with pytest.raises(ProfilesError, match="expected a value, got '-'"):
        out("{{ 7 % -3 }}")


def test_error_in_pb_project_yaml_names_its_own_line(tmp_path: Path) -> None:
    # pb templates pb_project.yaml itself: line 3 of the template is line 3 of the file
    (tmp_path / "pb_project.yaml").write_text("name: p\nschema_version: 99\nconnection: {{ best_schema_version || }}\n")
    with pytest.raises(ProfilesError) as info:
        load_project(tmp_path)
    assert (Path(info.value.file or "").name, info.value.line) == ("pb_project.yaml", 3)
    assert "line 3 of the template" in info.value.message


def test_deref_keyword_arguments_and_a_missing_path_are_refused_by_name() -> None:
    with pytest.raises(ProfilesError, match=r"DeRef dependency='optional' is not supported yet"):
        out('{% with m = this.DeRef("models/x", dependency="optional") %}{{ m }}{% endwith %}')
    with pytest.raises(ProfilesError, match=r"DeRef prereqs= takes a list of DeRef\(...\) values"):
        out("{%- set last = this.DeRef(pre_existing=true, prereqs=[1, 2]) -%}{{ last }}")
    with pytest.raises(ProfilesError, match=r"DeRef\(\) is not enabled in this run \(pre_existing: pb's checkpoint"):
        out("{%- set last = this.DeRef(pre_existing=true) -%}{{ last }}")
    with pytest.raises(ProfilesError, match=r"DeRef keyword arguments \['colour'\] are not supported"):
        out('{{ this.DeRef("models/x", colour="red") }}')


def test_python_spellings_of_literals_are_names_to_pongo2() -> None:
    # pongo2's literals are `true` and `false`; `True` or `None` are names, unknown to pb
    assert out("{{ true }} {{ false }}") == "True False"
    with pytest.raises(ProfilesError, match="'None' is undefined"):
        out("{% if x == None %}y{% endif %}", x=1)
