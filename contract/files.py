"""The names of the files that pass between the steps: prepare → train → evaluate → serve.

The model artifact's own files (model.pt, model_config.json, vocabulary.json) are named in
model/network.py and model/preprocess.py, which travel inside it and read them.
"""

# The prepared dataset, as `sentiment prepare` writes it: one directory per channel of the
# training job, and a manifest that describes them and where their reviews came from.
MANIFEST_FILE = "manifest.json"
REQUIRED_CHANNELS = ("train", "validation", "test")
OPTIONAL_CHANNELS = ("unlabeled",)
CHANNELS = REQUIRED_CHANNELS + OPTIONAL_CHANNELS
# What the training job leaves: the artifact (SageMaker tars SM_MODEL_DIR into it) and its
# report on the validation and test splits (in SM_OUTPUT_DATA_DIR; `sentiment train` puts it
# beside the artifact).
MODEL_ARTIFACT = "model.tar.gz"
TRAINING_REPORT_FILE = "training_report.json"
# What `sentiment evaluate` writes: its report on the raw test reviews, through the handlers.
EVALUATION_REPORT_FILE = "evaluation.json"
