"""The contracts every other layer reads: framework-free, imported by all, importing none.

Data flows one way (IMDB archive → prepare → training job → model.tar.gz → endpoint ←
Lambda ← API ← page) and the code depends one way too:

- ``contract`` (this package): the project's layout, the limits every tier enforces, how
  each serving worker runs the model, the training job's hyperparameter schema, the
  deterministic tarballs that carry the training source and the model artifact, the web
  page's settings file and security headers, and the behaviour suite with the promotion
  gate's rule (the local stack's and the training job's).
  Standard library only, so that synthesis, the training job and the local servers can
  all read it without starting torch or jsii.
- ``model/`` (run by SageMaker's containers) and ``lambda_src/`` (run by Lambda) import
  no other layer but this one, and only where it travels with them: train.py builds its
  argument parser from ``hyperparameters`` and applies ``promotion`` (the training source
  tarball carries this package, ``packaging.training_source_members``), and the prediction
  Lambda writes the ``capture`` format (so does its asset, ``packaging.lambda_asset_members``).
- ``stacks`` (the CDK app) and ``sentiment`` (the command line and the local stack) sit
  above them and never import each other. The local stack runs model/'s preprocessing and
  the Lambda's handler in process; the CDK app only ships them as assets.

tests/test_layers.py holds these rules.
"""
