"""Where the time of forecasting a whole uploaded dataset goes, stage by stage.

Runs what benchmarks/scale.py forecasts (its synthetic M4-monthly-sized collection, uploaded to
the embedded stack, trained by one worker), then:

- times POST /v1/forecasts with dataset_id end to end (request to forecasts in hand), twice:
  the first answer also loads the model into the worker's cache;
- repeats the worker's side of that batch in this process, on the same database and model,
  stage by stage (service.store.forecast_batches.answer_batch's steps, and within the engine
  bptt.forecast_arrays's), and prints a table of seconds per stage;
- prints the FLOP floor of the forecast: every GEMM of every member over the input window (the
  model's head gives the whole horizon at once, so no step of the horizon runs the network).

    python benchmarks/forecast_breakdown.py                 # 48,000 series
    python benchmarks/forecast_breakdown.py --series 4000 --threads 1 2

A short training is enough (the forecast path is what is timed): by default 300 updates per
member and validation_fraction 0.01 (one validation window a series, so calibration stays
short). Seconds depend on the machine and its load (printed): compare runs of one session.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
from _stack import embedded_stack
from scale import synthetic, train, upload, write_csv

from bptt import Model, forecast_arrays
from bptt.combination import partner_paths
from bptt.data import as_series
from bptt.inference import prepare_inputs, resolve_forecast_request, values_from_paths
from service.settings import Settings
from service.store import dataset_rows, db, repository
from service.store.forecast_batches import RESULT_COMPRESSION_LEVEL, ForecastTable

JOB = {"training": {"max_steps": 300, "validation_fraction": 0.01}}


def timed(rows: list[tuple[str, float]], name: str, call: Callable):
    """call(), its seconds appended to rows as (name, seconds)."""
    began = time.perf_counter()
    out = call()
    rows.append((name, time.perf_counter() - began))
    return out


def forecast_flops(model, series: int) -> float:
    """GEMM FLOPs of forecasting `series` series: per member, layer and input step the input
    projection and the recurrent product (2 x rows x 4H x (inputs + H)), then the head."""
    net, steps = model.network, model.spec.window.input_size
    gh, h = net.gates * net.hidden_size, net.hidden_size
    flops = 0.0
    for k in range(net.num_layers):
        inputs = net.input_size if k == 0 else h
        flops += 2 * steps * series * gh * (inputs + h)
    flops += 2 * series * h * net.output_size
    return flops * len(model.members)


def worker_stages(sessions, job_id: str, dataset_id: str, threads: int
                  ) -> tuple[list[tuple[str, float]], object, int]:
    """answer_batch's work on the dataset, stage by stage: (rows of (stage, seconds), the
    model, series forecast). The engine's stages are forecast_arrays' own steps, in order."""
    rows: list[tuple[str, float]] = []
    with sessions() as session:
        model = timed(rows, "load model (cold: bytes from the database, parsed)",
                      lambda: Model.from_bytes(repository.model_weights(session,
                                                                        job_id=job_id)))
        series = timed(rows, "read dataset (chunks, decompress, per-series dicts)",
                       lambda: dataset_rows.read_selection(session, dataset_id, None))
    named = timed(rows, "engine: check series (as_series)", lambda: as_series(series))
    ids = [name for name, _ in named]
    inputs = timed(rows, "engine: scale, season, tails (prepare_inputs)",
                   lambda: prepare_inputs(model, ids, [v for _, v in named]))
    horizon, wanted = resolve_forecast_request(model, None, [])
    levels = inputs.tails[:, -1]
    x = (inputs.tails - levels[:, None]).T[:, :, None].astype(np.float32)
    paths = timed(rows, f"engine: network, {len(model.members)} members ({threads} threads)",
                  lambda: model.quantile_paths(x, threads))
    timed(rows, "  (of which: partner paths alone)",
          lambda: partner_paths(inputs.tails - levels[:, None], np.zeros(len(ids)),
                                model.spec.season_length or 1, horizon))
    values = timed(rows, "engine: combination, unscale (values_from_paths)",
                   lambda: values_from_paths(model, ids, paths.copy(), levels, inputs,
                                             horizon, wanted))
    table = ForecastTable(ids, wanted, values)
    text = timed(rows, "JSON document (ForecastTable.json_bytes)", table.json_bytes)
    timed(rows, "compress the result (zlib level 1)",
          lambda: zlib.compress(text, RESULT_COMPRESSION_LEVEL))
    total = timed(rows, "all of it again, as run_forecast runs it (forecast_arrays)",
                  lambda: forecast_arrays(model, series, None, [], threads))
    assert np.array_equal(total[2], values, equal_nan=True), "stages differ from the whole"
    return rows, model, len(ids)


def forecast_phases(stack, job_id: str, dataset_id: str) -> list[float]:
    """scale.forecast_all's request, in phases (seconds): [total, the POST's answer, queued
    (the batch's created_at to started_at, on the database's clock), the worker's (started_at
    to finished_at), from then until the client saw it succeed, the GET that returned it, the
    client's parse of that answer]."""
    began = time.perf_counter()
    answer = stack.call("POST", "/v1/forecasts", {"job_id": job_id, "dataset_id": dataset_id,
                                                  "quantiles": []})
    posted = time.perf_counter()
    while True:
        request = urllib.request.Request(f"{stack.url}/v1/forecasts/{answer['id']}",
                                         headers={"Authorization": f"Bearer {stack.token}"})
        asked = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
        got = time.perf_counter()
        batch = json.loads(body)
        parsed = time.perf_counter()
        if batch["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    assert batch["status"] == "succeeded", batch["error"]
    created, started, finished = (datetime.fromisoformat(batch[k]) for k in
                                  ("created_at", "started_at", "finished_at"))
    queued = (started - created).total_seconds()
    worker = (finished - started).total_seconds()
    until = (asked - posted) - queued - worker
    return [parsed - began, posted - began, queued, worker, until, got - asked, parsed - got]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=48_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, nargs="+", default=[2],
                        help="engine threads for the in-process stages (the worker's: "
                             "BPTT_FORECAST_THREADS)")
    args = parser.parse_args(argv)

    collection = synthetic(args.series, args.seed)
    print(f"{args.series} series, {collection.points:,} points; {os.cpu_count()} cores, load "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; job {JOB}")
    with tempfile.TemporaryDirectory() as folder, embedded_stack(1) as stack:
        path = Path(folder) / "collection.csv.gz"
        write_csv(collection, path)
        _, dataset = upload(stack, path)
        job = train(stack, dataset["id"], 1, 60, JOB)[0]
        assert job["status"] == "succeeded", job
        print()
        print("| end to end: POST /v1/forecasts (dataset_id) to forecasts in hand | total s |"
              " POST answered | queued | worker | until fetched | GET | client parse |")
        print("|---|---|---|---|---|---|---|---|")
        for attempt in ("first (the worker loads the model)", "second (model cached)"):
            phases = forecast_phases(stack, job["id"], dataset["id"])
            print(f"| {attempt} | " + " | ".join(f"{p:.2f}" for p in phases) + " |",
                  flush=True)
        settings = Settings.from_env({**os.environ, "BPTT_DATA_DIR": stack.data_dir})
        sessions = db.session_factory(settings)
        for threads in args.threads:
            rows, model, count = worker_stages(sessions, job["id"], dataset["id"], threads)
            print()
            print(f"| worker-side stage, {count} series, {threads} engine threads | s |")
            print("|---|---|")
            for name, seconds in rows:
                print(f"| {name} | {seconds:.2f} |")
            flops = forecast_flops(model, count)
            net = next(s for n, s in rows if n.startswith("engine: network"))
            print(f"\nFLOP floor: {flops / 1e9:.0f} GFLOP of GEMMs ({len(model.members)} members"
                  f", {model.spec.window.input_size} input steps, hidden "
                  f"{model.network.hidden_size}); the network ran at {flops / net / 1e9:.0f} "
                  f"GFLOP/s on {threads} threads", flush=True)
    print(f"\nload after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
