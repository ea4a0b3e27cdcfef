"""The jobs of a run, one module each; `profiles_dagster.runner.ProfilesRun` orchestrates them.

- `recording`: the run's and its materials' rows in the run registry (`sql/registry.py` holds the SQL);
- `materials`: which table each step writes, and which earlier material each unselected upstream reads;
- `inputs`: the inputs a run reads: `csv:`/`s3:` files loaded into tables, pb's contracts checked;
- `execution`: one step's statements sent to the warehouse;
- `resume`: pb's `--seq_no N`, continuing an earlier run;
- `publication`: the swap of the stable views to the run's materials.
"""
