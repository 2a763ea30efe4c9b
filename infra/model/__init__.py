"""The model, from its source to the serving image's build context: where it comes from
and how it is fetched (source, fetch), unpacked (archive), checked and laid out as TF
Serving reads it (layout), what it serves (signatures), the protobuf messages read and
written without TensorFlow (protos), the warmup records baked in with it (warmup/), where
TF Serving finds it in the image and listens (serving), and the image's build context
(build_context).

Nothing is imported here: the load-generator image carries only protos.py of this package.
"""
