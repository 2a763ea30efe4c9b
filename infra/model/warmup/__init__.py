"""Warm starts: TF Serving reads `<version>/assets.extra/tf_serving_warmup_requests`, a
TFRecord file of PredictionLog records, and runs each before it serves the model, so the
first real requests do not pay for lazy initialisation. records.py decides what goes in
(the model's own file, or one generated from its signatures, without TensorFlow);
tfrecord.py writes and reads the framing."""
