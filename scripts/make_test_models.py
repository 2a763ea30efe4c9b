"""Generate tests/data/models: tiny SavedModels that TF Serving reads in ways a careless
reader gets wrong. Each is a real SavedModel written by TensorFlow itself.

- serve_gpu_first: a MetaGraph tagged {serve, gpu} before the {serve} one, each with its
  own serving_default signature (TF Serving's CPU image loads the {serve} one).
- gpu_only: only a {serve, gpu} MetaGraph (the CPU image cannot load it).
- sparse_input: a signature with a SparseTensor input (TensorInfo.coo_sparse) beside a
  dense one.
- ragged_input: a signature with a RaggedTensor input (TensorInfo.composite_tensor).
- mixed_dtypes: inputs of DT_STRING, DT_HALF and DT_BFLOAT16 beside DT_FLOAT.

And tests/data/warmup: warmup files for models/tiny_classifier written with TF Serving's
own Python messages (tensorflow-serving-api) and TensorFlow's TFRecord writer: one that
loads (a Predict request for serving_default), one naming an input the model lacks, and
one holding a session-run log.

Then every model is loaded with TensorFlow's C++ SavedModel loader (the one TF Serving
links), tags {serve}, and the outcome printed: tests/data/models/README.md records it.

Needs TensorFlow and TF Serving's API package, which the program itself does not:
    python -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu tensorflow-serving-api
    /tmp/tf/bin/python scripts/make_test_models.py
"""

from __future__ import annotations

import argparse
import ctypes
import shutil
from pathlib import Path

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

v1 = tf.compat.v1


def _graph_model(out: Path, graphs: list[tuple[list[str], str, int]]) -> None:
    """A TF1-style SavedModel: one MetaGraph per (tags, input name, input width), each
    summing its input's rows into `total`."""
    builder = v1.saved_model.Builder(str(out))
    for index, (tags, input_name, width) in enumerate(graphs):
        with tf.Graph().as_default(), v1.Session() as session:
            x = v1.placeholder(tf.float32, [None, width], name=input_name)
            scale = v1.get_variable("scale", initializer=tf.constant(2.0))
            total = tf.identity(tf.reduce_sum(x, axis=1) * scale, name="total")
            session.run(v1.global_variables_initializer())
            signature = v1.saved_model.signature_def_utils.predict_signature_def(
                inputs={input_name: x}, outputs={"total": total}
            )
            signatures = {"serving_default": signature}
            if index == 0:
                builder.add_meta_graph_and_variables(session, tags, signature_def_map=signatures)
            else:
                builder.add_meta_graph(tags, signature_def_map=signatures)
    builder.save()


def _composite_model(out: Path, sparse: bool) -> None:
    """A TF1-style SavedModel whose signature has a composite input beside a dense one: a
    SparseTensor (TensorInfo.coo_sparse) or a RaggedTensor (TensorInfo.composite_tensor)."""
    builder = v1.saved_model.Builder(str(out))
    with tf.Graph().as_default(), v1.Session() as session:
        dense = v1.placeholder(tf.float32, [None, 4], name="dense")
        if sparse:
            composite = v1.sparse_placeholder(tf.float32, [None, 16], name="ids")
            rows = v1.sparse_reduce_sum(composite, axis=1)
        else:
            composite = v1.ragged.placeholder(tf.float32, ragged_rank=1, value_shape=[])
            rows = tf.reduce_sum(composite, axis=1)
        total = tf.identity(rows + tf.reduce_sum(dense, axis=1), name="total")
        name = "ids" if sparse else "tokens"
        signature = v1.saved_model.signature_def_utils.build_signature_def(
            inputs={
                name: v1.saved_model.utils.build_tensor_info(composite),
                "dense": v1.saved_model.utils.build_tensor_info(dense),
            },
            outputs={"total": v1.saved_model.utils.build_tensor_info(total)},
            method_name="tensorflow/serving/predict",
        )
        builder.add_meta_graph_and_variables(
            session, ["serve"], signature_def_map={"serving_default": signature}
        )
    builder.save()


class _Mixed(tf.Module):  # type: ignore[misc]
    @tf.function(  # type: ignore[untyped-decorator]
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([None, 4], tf.float16, name="half"),
            tf.TensorSpec([None, 4], tf.bfloat16, name="brain"),
            tf.TensorSpec([None, 4], tf.float32, name="features"),
        ]
    )
    def serve(
        self, text: tf.Tensor, half: tf.Tensor, brain: tf.Tensor, features: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        total = (
            tf.cast(tf.reduce_sum(half, axis=1), tf.float32)
            + tf.cast(tf.reduce_sum(brain, axis=1), tf.float32)
            + tf.reduce_sum(features, axis=1)
        )
        return {"total": total, "length": tf.strings.length(text)}


def _warmup_files(out: Path) -> None:
    """Warmup records for models/tiny_classifier (input image_input float32 (-1, 224, 224,
    3)); one float value stands for the whole tensor, as TensorFlow's Tensor::FromProto
    repeats the last value given."""

    def predict(input_name: str) -> bytes:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "tiny_classifier"
        request.model_spec.signature_name = "serving_default"
        tensor = tf.make_tensor_proto(0.5, dtype=tf.float32, shape=[1, 224, 224, 3])
        request.inputs[input_name].CopyFrom(tensor)
        log = prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        )
        data: bytes = log.SerializeToString()
        return data

    session_run = prediction_log_pb2.PredictionLog()
    session_run.session_run_log.SetInParent()
    files = {
        "tiny_classifier_ok": [predict("image_input")],
        "tiny_classifier_wrong_input": [predict("image")],
        "tiny_classifier_session_run": [session_run.SerializeToString()],
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, records in files.items():
        with tf.io.TFRecordWriter(str(out / name)) as writer:
            for record in records:
                writer.write(record)


def _load_with_tensorflow(path: Path) -> str:
    """TF_LoadSessionFromSavedModel (TensorFlow's C API over its C++ LoadSavedModel)."""
    lib = ctypes.CDLL(str(Path(tf.__file__).parent / "libtensorflow_cc.so.2"))
    for name in ("TF_NewStatus", "TF_NewSessionOptions", "TF_NewGraph"):
        getattr(lib, name).restype = ctypes.c_void_p
    lib.TF_LoadSessionFromSavedModel.restype = ctypes.c_void_p
    lib.TF_LoadSessionFromSavedModel.argtypes = [
        ctypes.c_void_p,  # session options
        ctypes.c_void_p,  # run options
        ctypes.c_char_p,  # export directory
        ctypes.POINTER(ctypes.c_char_p),  # tags
        ctypes.c_int,  # number of tags
        ctypes.c_void_p,  # graph
        ctypes.c_void_p,  # meta graph def out
        ctypes.c_void_p,  # status
    ]
    lib.TF_GetCode.argtypes = [ctypes.c_void_p]
    lib.TF_Message.argtypes = [ctypes.c_void_p]
    lib.TF_Message.restype = ctypes.c_char_p
    status = lib.TF_NewStatus()
    tags = (ctypes.c_char_p * 1)(b"serve")
    lib.TF_LoadSessionFromSavedModel(
        lib.TF_NewSessionOptions(),
        None,
        str(path).encode(),
        tags,
        1,
        lib.TF_NewGraph(),
        None,
        status,
    )
    if lib.TF_GetCode(status) == 0:
        return "loads"
    message: bytes = lib.TF_Message(status)
    return f"fails: {message.decode().split('. ')[0]}"


def _run_warmup_with_tensorflow(model: Path, warmup: Path) -> str:
    """Each Predict record fed to the model's signature by TensorFlow, as TF Serving's
    RunPredict feeds it (inputs by alias); what TensorFlow says."""
    loaded = tf.saved_model.load(str(model))
    for record in tf.data.TFRecordDataset(str(warmup)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = log.WhichOneof("log_type")
        if kind != "predict_log":
            return f"a {kind}: TF Serving's RunWarmupRequest refuses it (Unimplemented)"
        request = log.predict_log.request
        function = loaded.signatures[request.model_spec.signature_name or "serving_default"]
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        try:
            function(**inputs)
        except TypeError as error:
            return f"fails: {str(error).splitlines()[0][:120]}"
    return "runs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/data/models"))
    parser.add_argument("--warmup-out", type=Path, default=Path("tests/data/warmup"))
    args = parser.parse_args()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _graph_model(
        out / "serve_gpu_first" / "1", [(["serve", "gpu"], "gpu_x", 8), (["serve"], "x", 4)]
    )
    _graph_model(out / "gpu_only" / "1", [(["serve", "gpu"], "gpu_x", 8)])
    _composite_model(out / "sparse_input" / "1", sparse=True)
    _composite_model(out / "ragged_input" / "1", sparse=False)
    mixed = _Mixed()
    tf.saved_model.save(
        mixed, str(out / "mixed_dtypes" / "1"), signatures={"serving_default": mixed.serve}
    )
    _warmup_files(args.warmup_out)
    for path in sorted([*out.rglob("*"), *args.warmup_out.rglob("*")]):
        if path.is_file():
            print(f"{path.stat().st_size:>8}  {path}")
    for warmup in sorted(args.warmup_out.iterdir()):
        print(
            f"TensorFlow {tf.__version__} runs {warmup.name} on models/tiny_classifier: "
            f"{_run_warmup_with_tensorflow(Path('models/tiny_classifier'), warmup)}"
        )
    for version in sorted(out.glob("*/1")):
        print(
            f"TensorFlow {tf.__version__} C++ loader, tags {{serve}}: {version.parent.name} "
            f"{_load_with_tensorflow(version)}"
        )


if __name__ == "__main__":
    main()
