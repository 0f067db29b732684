"""Profile shapes, batches, cold start and the emulation limits (CPU pinning, memory cap)."""

import os
from dataclasses import replace

import numpy as np
import pytest

from edgekit.bench.adapters import ArtifactAdapter
from edgekit.bench.harness import BenchError, BenchSettings, Variant, cold_start, run_benchmark
from edgekit.bench.report import markdown
from edgekit.bench.results import new_document
from edgekit.bench.worker import text_with_tokens
from edgekit.data import TextDataset, read_text_dataset
from edgekit.targets.emulation import plan_emulation
from edgekit.targets.host import HostInfo
from edgekit.targets.profiles import load_target

HOST = HostInfo("x86_64", "EPYC", 2, 2, ("avx", "avx2", "fma"), 8192, "Linux", "3.11")


def test_text_with_tokens_hits_the_requested_length_and_stops_at_truncation(tiny_artifact):
    adapter = ArtifactAdapter(tiny_artifact, threads=1)
    words = "the movie was good and the plot was bad".split()
    text, tokens = text_with_tokens(adapter, 12, words)
    assert tokens == adapter.token_count(text) == 12, "single-token words reach the length exactly"
    limit = adapter._model.manifest.tokenizer["max_length"]
    _, capped = text_with_tokens(adapter, limit * 4, words)
    assert capped == limit, "the model's maximum caps the shape instead of looping"


def test_affinity_is_planned_from_the_profile_and_the_cpus_we_may_use():
    target = load_target("raspberry-pi-4")  # emulation: threads 2, cpu_affinity [0, 1], memory_cap_mb 4096
    plan = plan_emulation(target, HOST, allowed_cpus={0, 1})
    assert plan.cpu_affinity == (0, 1) and plan.memory_cap_mb == 4096
    assert "pinned to CPUs 0,1" in plan.label and "memory capped at 4096 MB" in plan.label
    narrow = plan_emulation(target, HOST, allowed_cpus={1, 5})
    assert narrow.cpu_affinity == (1,)
    assert any("CPUs [0]" in c for c in narrow.caveats) and any("share 1 pinned" in c for c in narrow.caveats)
    assert plan_emulation(target, HOST, allowed_cpus={7}).cpu_affinity is None


def test_shapes_batches_cold_start_and_pinning_in_a_real_worker(tiny_artifact, tiny_data):
    data = read_text_dataset(tiny_data)
    cpu = min(os.sched_getaffinity(0))
    settings = BenchSettings(threads=1, runs=16, warmup=2, rounds=2, batch_sizes=(1, 4), sequence_lengths=(8, 20),
                             shape_runs=6, cpu_affinity=(cpu,), memory_cap_mb=4096)  # fmt: skip
    (summary,) = run_benchmark([Variant("onnx", "artifact", tiny_artifact)], data, settings)
    assert summary["cpu_affinity"] == [cpu], "the worker ran pinned to the profile's CPU"
    shapes = summary["by_sequence_length"]
    assert [s["tokens"] for s in shapes] == [8, 20] and all(s["latency_ms"]["count"] == 12 for s in shapes)
    (batch,) = summary["batches"]
    assert batch["batch_size"] == 4 and batch["latency_ms"]["count"] == 12
    assert batch["throughput_per_s"] == pytest.approx(4000 / batch["latency_ms"]["mean"])
    cold = summary["cold_start"]
    assert len(cold["total_s_rounds"]) == 2, "every round is a fresh process"
    assert cold["startup_s"] > 0 and cold["load_s"] > 0
    assert cold["total_s"] == pytest.approx(float(np.median(cold["total_s_rounds"])))
    assert all(t > cold["startup_s"] and t > 0.01 for t in cold["total_s_rounds"]), "every part is inside the total"
    assert summary["token_counts"]["min"] <= summary["token_counts"]["max"]
    document = new_document({"name": "t", "mode": "emulated-on-host", "emulated": ["threads=1"], "caveats": ["c"]},
                            {**settings.__dict__, "data": "d"}, [summary])  # fmt: skip
    text = markdown(document)
    assert "| onnx | 0." in text.split("Latency by shape")[1], "shape table rendered"
    assert "batch 4 texts/s" in text and "Cold start in a fresh process" in text and "Caveat: c." in text


def test_a_memory_cap_too_small_for_the_model_is_a_clear_failure(tiny_artifact, monkeypatch):
    """The address-space fallback: what a machine that may not make cgroups uses."""
    monkeypatch.setattr("edgekit.bench.harness.make_cgroup_cap", lambda *_: None)
    data = TextDataset(["hello there"], None, "mem")
    settings = BenchSettings(threads=1, runs=10, memory_cap_mb=80)  # onnxruntime alone needs more address space
    variants = [Variant("onnx", "artifact", tiny_artifact)]
    with pytest.raises(BenchError, match="emulated memory cap of 80 MB of address space"):
        run_benchmark(variants, data, settings)
    (summary,) = run_benchmark(variants, data, replace(settings, memory_cap_mb=2048))
    assert summary["memory_cap"] == "address space capped at 2048 MB (RLIMIT_AS: stricter than RAM)"


def test_a_cgroup_cap_counts_resident_memory_and_the_oom_kill_is_named(tiny_artifact):
    from edgekit.bench.memcap import make_cgroup_cap

    probe = make_cgroup_cap(256, f"edgekit-test-probe-{os.getpid()}")
    if probe is None:
        pytest.skip("this process may not create a memory cgroup (needs root or a delegated cgroup v2 subtree)")
    probe.remove()
    data = TextDataset(["hello there"], None, "mem")
    # 150 MB of RAM is enough for the tiny model, though onnxruntime reserves far more address space.
    (summary,) = run_benchmark([Variant("onnx", "artifact", tiny_artifact)], data,
                               BenchSettings(threads=1, runs=10, memory_cap_mb=150))  # fmt: skip
    assert summary["memory_cap"].startswith("memory capped at 150 MB (cgroup v")
    assert summary["peak_rss_mb"] < 150
    variants = [Variant("onnx", "artifact", tiny_artifact)]
    with pytest.raises(BenchError, match="the kernel stopped it"):  # the model's own memory does not fit
        run_benchmark(variants, data, BenchSettings(threads=1, runs=10, memory_cap_mb=12))
    # Shared libraries another cgroup read first are not charged to this one, so the worker
    # may stay under the cgroup with more resident memory than the cap (or be killed, if it
    # read them first): either way it does not fit the device.
    with pytest.raises(BenchError, match="emulated memory of 40 MB"):
        run_benchmark(variants, data, BenchSettings(threads=1, runs=10, memory_cap_mb=40))
    parent = probe.path.parent
    assert not list(parent.glob(f"edgekit-bench-{os.getpid()}-*")), "every worker's cgroup is removed"


def test_cold_start_summary_is_the_median_over_rounds():
    rounds = [
        {"startup_s": 0.1, "import_s": 0.2, "load_s": 0.3, "first_inference_ms": 100.0},
        {"startup_s": 0.1, "import_s": 0.1, "load_s": 0.1, "first_inference_ms": 100.0},
        {"startup_s": 0.1, "import_s": 0.1, "load_s": 0.2, "first_inference_ms": 100.0},
    ]
    cold = cold_start(rounds)
    assert cold["total_s"] == pytest.approx(0.5) and cold["load_s"] == pytest.approx(0.2)
    assert cold["total_s_rounds"] == pytest.approx([0.7, 0.4, 0.5])


def test_a_variant_that_does_not_fit_is_a_finding_and_the_others_are_still_measured(tiny_artifact, tmp_path,
                                                                                    monkeypatch):  # fmt: skip
    import shutil

    from edgekit.bench import harness
    from edgekit.bench.harness import DoesNotFitError
    from edgekit.bench.session import benchmark_artifacts

    fits, too_big = (shutil.copytree(tiny_artifact, tmp_path / name) for name in ("fits", "too-big"))
    real_worker = harness._run_worker

    def worker(spec, env=()):  # the kernel's verdict, planted for one variant (the real one is tested above)
        if spec.variant == "too-big":
            raise DoesNotFitError("Variant 'too-big' went over the target's emulated memory of 64 MB")
        return real_worker(spec, env)

    monkeypatch.setattr(harness, "_run_worker", worker)
    document = benchmark_artifacts([fits, too_big], runs=10, warmup=1, rounds=2, shapes=False)
    assert [v["name"] for v in document["variants"]] == ["fits"], "the other variant is still measured"
    assert document["did_not_fit"][0]["name"] == "too-big"
    assert {"variant": "too-big", "budget": "fits_memory_cap_mb", "passed": False}.items() <= document["budgets"][
        -1
    ].items()
    assert "Did not fit the emulated memory: too-big" in markdown(document)
    with pytest.raises(DoesNotFitError):  # without a place to report it, the run stops, as before
        harness.run_benchmark([Variant("too-big", "artifact", too_big)], TextDataset(["hi"], None, "m"),
                              BenchSettings(threads=1, runs=10))  # fmt: skip
