"""The knobs people expect from optimum-cli / benchmark_app / onnxruntime_perf_test: short flags,
listed choices, log levels (restored after quantization), --json, config from a file or the
environment, and an execution-provider flag; bench output: raw samples, CPU use, throughput mode."""

import json
import logging

import pytest
from typer.testing import CliRunner

from edgekit.bench.providers import parse_providers, with_providers
from edgekit.cli import app
from edgekit.errors import RecipeError

runner = CliRunner()


def run(*args, env=None):
    wide = {"COLUMNS": "300", "TERMINAL_WIDTH": "300"}  # help text on one line per option
    return runner.invoke(app, [str(a) for a in args], env={**wide, **(env or {})})


@pytest.fixture
def root_level():
    """The root logger's level and the transformers/nncf/optimum ones, restored after a test."""
    names = ("", "transformers", "nncf", "optimum")
    before = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def test_quantizer_log_silencing_is_restored(root_level):
    from edgekit.quantize.ort import _quiet_quantizer_logs

    logging.getLogger().setLevel(logging.DEBUG)
    with _quiet_quantizer_logs():
        assert logging.getLogger().level == logging.ERROR  # the quantizer's warning is hidden while it runs
    assert logging.getLogger().level == logging.DEBUG  # and the caller's level is back

    @_quiet_quantizer_logs()
    def failing():
        raise ValueError("boom")

    with pytest.raises(ValueError):
        failing()
    assert logging.getLogger().level == logging.DEBUG  # restored on errors too


def test_global_log_level_verbose_and_quiet(root_level):
    assert run("--log-level", "DEBUG", "targets", "list").exit_code == 0
    assert logging.getLogger().level == logging.DEBUG and logging.getLogger("transformers").level == logging.DEBUG
    assert run("-v", "targets", "list").exit_code == 0
    assert logging.getLogger().level == logging.INFO
    assert run("--quiet", "targets", "list").exit_code == 0
    assert logging.getLogger().level == logging.ERROR
    refused = run("--log-level", "LOUD", "targets", "list")
    assert refused.exit_code == 2 and "LOUD" in refused.output


def test_help_lists_choices_and_short_flags():
    convert_help = run("convert", "--help").output
    for text in ("dynamic|static|none", "optimum|dynamo", "minmax|entropy|percentile", "-m", "-o", "-d", "-q"):
        assert text in convert_help, text
    assert "ort-int8-dynamic" in convert_help  # variant names, from the variant registry
    bench_help = run("bench", "run", "--help").output
    for text in ("latency|throughput", "--provider", "onnxruntime", "openvino", "EDGEKIT_BENCH_", "--json"):
        assert text in bench_help, text
    serve_help = run("serve", "--help").output
    assert "--provider" in serve_help and "EDGEKIT_SERVE_" in serve_help and "--config" in serve_help
    assert run("convert", "--quantize", "int4", "-m", "x").exit_code == 2  # refused by the choice list


def test_provider_values_map_onto_the_engines_device_options():
    chosen = parse_providers(["cpu", "openvino:gpu,cpu", "cuda", "onnxruntime:DnnlExecutionProvider"])
    assert chosen["onnxruntime"]["providers"] == ["CPUExecutionProvider", "CUDAExecutionProvider",
                                                 "DnnlExecutionProvider"]  # fmt: skip
    assert chosen["openvino"]["devices"] == ["CPU", "GPU"]  # order is preference, no repeats
    assert parse_providers(["NPU"]) == {"openvino": {"devices": ["NPU"]}}
    for bad in ("tpu", "onnxruntime:", "warp-drive:CPU"):
        with pytest.raises(RecipeError, match="ENGINE:VALUE|names no value"):
            parse_providers([bad])
    base = {"threads": 4, "engines": {"onnxruntime": {"providers": ["X"]}, "openvino": {"devices": ["CPU"]}}}
    merged = with_providers(base, parse_providers(["openvino:GPU"]))
    assert merged == {"threads": 4, "engines": {"onnxruntime": {"providers": ["X"]}, "openvino": {"devices": ["GPU"]}}}
    assert base["engines"]["openvino"] == {"devices": ["CPU"]}  # the target's own settings are not mutated
    assert with_providers("host", {}) == "host"


def test_bench_json_config_env_provider_and_throughput(tmp_path, tiny_artifact, tiny_data):
    config = tmp_path / "bench.yaml"
    config.write_text("runs: 12\nwarmup: 50\nshapes: false\nmode: throughput\n")
    out = tmp_path / "r.json"
    result = run("bench", tiny_artifact, "-d", tiny_data, "--threads", "1", "-o", out, "--config", config,
                 "--concurrency", "2", "-e", "cpu", "--json", env={"EDGEKIT_BENCH_WARMUP": "1"})  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # stdout is the document and nothing else
    assert document == json.loads(out.read_text())
    variant = document["variants"][0]
    assert variant["latency_ms"]["count"] == 12  # from the config file
    assert document["settings"]["warmup"] == 1  # the environment beats the file
    assert document["settings"]["mode"] == "throughput" and document["settings"]["concurrency"] == 2
    usage = variant["usage"]
    assert usage["mode"] == "throughput" and usage["concurrency"] == 2 and usage["requests"] == 12
    assert usage["inferences_per_s"] > 0 and variant["throughput_per_s"] == usage["inferences_per_s"]
    assert usage["cpu_utilisation"] > 0 and usage["cpu_s"] > 0 and usage["wall_s"] > 0
    samples = variant["latency_samples_ms"]
    assert samples["unit"] == "ms" and samples["samples_total"] == samples["samples_kept"] == 12
    assert len(samples["rounds"]) == 1 and all(ms > 0 for ms in samples["rounds"][0])
    assert sorted(samples["rounds"][0])[6] == pytest.approx(variant["latency_ms"]["median"], abs=1e-3, rel=0.5)

    compared = run("bench", "compare", out, out, "--json")
    assert compared.exit_code == 0, compared.output
    assert set(json.loads(compared.stdout)) == {"changes", "remarks"}


def test_bench_config_file_errors_are_clear(tmp_path, tiny_artifact):
    config = tmp_path / "bench.yaml"
    config.write_text("runz: 12\n")
    result = run("bench", tiny_artifact, "--config", config)
    assert result.exit_code == 2 and "unknown key 'runz'" in result.output and "runs" in result.output
    config.write_text("runs: [\n")
    result = run("bench", tiny_artifact, "--config", config)
    assert result.exit_code == 2 and "bench.yaml" in result.output


def test_targets_list_json():
    result = run("targets", "list", "--json")
    assert result.exit_code == 0
    assert any(row["name"] == "raspberry-pi-5" for row in json.loads(result.stdout))


def test_real_dynamic_quantization_leaves_the_callers_log_level(tmp_path, root_level):
    """ONNX Runtime's quantizer on a one-MatMul graph: it runs, and DEBUG is still DEBUG after."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.quantize.ort import quantize_dynamic_int8

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [weight])  # fmt: skip
    source, target = tmp_path / "m.onnx", tmp_path / "q.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)
    logging.getLogger().setLevel(logging.DEBUG)
    quantize_dynamic_int8(source, target, per_channel=True, reduce_range=False)
    assert target.is_file() and any(n.op_type.startswith("MatMulInteger") or "Integer" in n.op_type
                                    for n in onnx.load(target).graph.node)  # fmt: skip
    assert logging.getLogger().level == logging.DEBUG
