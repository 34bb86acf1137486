"""Where a paged DescribeSnapshots (MaxResults=100) spends its time, in-process (issue 14:
every paged call <= 30 ms, as boto3 sees it).

    python -m bench.profile_pages [--count 10000] [--repeat 20] [--profile]

Seeds a SQLite store with `count` tagged snapshots (bench/scale_metadata.py's Seeder), then
times, alternating call by call: `handle`, Dispatcher.handle on a botocore-signed request
(SigV4, parsing, the handler, its SQL, XML out; no network); `parse`, botocore parsing that
response into the dict boto3 returns (the client's share of a call). CPU ms, medians;
--profile prints a cProfile of `handle`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path

import botocore.session
from botocore.parsers import create_parser

from bench.describe_tags_parts import seeded, signed
from snapferry.config import Settings
from snapferry.server import Dispatcher
from snapferry.wire.http import IncomingRequest


def body_for(page: int) -> bytes:
    return urllib.parse.urlencode({"Action": "DescribeSnapshots", "Version": "2016-11-15",
                                   "Owner.1": "self", "MaxResults": str(page)}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    model = botocore.session.get_session().get_service_model("ec2")
    output = model.operation_model("DescribeSnapshots").output_shape
    reader = create_parser("ec2")
    with tempfile.TemporaryDirectory(prefix="snapferry-pages-") as tmp, \
            seeded("sqlite", Path(tmp), args.count) as (storage, _):
        dispatcher = Dispatcher(storage, Settings(data_dir=storage.data_dir))
        body = body_for(args.page)
        headers = signed(body)
        answers: list[bytes] = []

        def handle() -> None:
            response = dispatcher.handle(IncomingRequest("POST", "/", "", headers, body))
            assert response.status == 200, response.body[:300]
            answers[:] = [response.body]

        def parse() -> None:
            found = reader.parse({"body": answers[0], "headers": {}, "status_code": 200},
                                 output)
            assert len(found["Snapshots"]) == args.page

        parts = {"handle": handle, "parse": parse}
        times: dict[str, list[float]] = {name: [] for name in parts}
        for part in parts.values():
            part()
        for _ in range(args.repeat):
            for name, part in parts.items():
                started = time.process_time()
                part()
                times[name].append((time.process_time() - started) * 1000)
        print(f"{args.count} snapshots, pages of {args.page}, {len(answers[0])} bytes of XML; "
              "CPU ms, median of", args.repeat)
        for name, values in times.items():
            print(f"  {name:7} {statistics.median(values):7.2f} "
                  f"({min(values):.2f}-{max(values):.2f})")
        if args.profile:
            found = cProfile.Profile()
            found.enable()
            for _ in range(args.repeat):
                handle()
            found.disable()
            pstats.Stats(found).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
