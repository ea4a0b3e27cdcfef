"""Runs INSIDE the pyspark venv: Spark SQL on local[2] behind line-delimited JSON over TCP.

Databricks' own protocol has no offline stand-in (pyspark's Thrift server refuses the connector's
protocol version), so Databricks SQL runs on Spark's engine here and `databricks.SparkConnection`
gives the tests a DB-API connection over this socket. One request per line:
{"sql": "..."} -> {"columns": [...], "rows": [[...]]} or {"error": "..."}.
"""

import datetime
import decimal
import json
import socketserver
import sys


def encode(value):
    if isinstance(value, datetime.datetime):
        return {"$ts": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$dec": str(value)}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def main(port: int, warehouse: str) -> None:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("profiles-dagster-databricks-standin")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.warehouse.dir", warehouse)
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        # tiny tables: compiling generated code costs more than it saves; interpret plans instead
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
        .config("spark.sql.parquet.compression.codec", "uncompressed")
        .config("spark.default.parallelism", "2")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version", "2")  # one rename per file
        # a short-lived JVM: the C1 compiler alone warms up sooner and costs less CPU than C2
        .config(
            "spark.driver.extraJavaOptions",
            f"-Dderby.system.home={warehouse} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        )
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.sql("SELECT 1").collect()  # warm up before saying ready

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                request = json.loads(line)
                try:
                    frame = spark.sql(request["sql"])
                    rows = [encode(list(r)) for r in frame.collect()]
                    reply = {
                        "columns": frame.columns,
                        "types": [f.dataType.simpleString() for f in frame.schema.fields],
                        "rows": rows,
                    }
                except Exception as exc:
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                try:
                    text = json.dumps(reply, default=str)
                except Exception as exc:
                    text = json.dumps({"error": f"cannot encode the result: {type(exc).__name__}: {exc}"})
                self.wfile.write((text + "\n").encode())
                self.wfile.flush()

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    with Server(("127.0.0.1", port), Handler) as server:
        print("READY", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
