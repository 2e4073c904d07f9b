"""The drift Lambda: on a schedule, captured traffic against the model's drift baseline, as
CloudWatch metrics.

Deployed, the handler is ``drift.handler.handler`` (the asset root is ``lambda_src/``). It
computes what `sentiment monitor` computes, with the same functions (contract/drift.py and
contract/drift_sources.py), and publishes the figures; the stack's alarms hold the thresholds.

- ``settings``   the function's environment, read and checked
- ``tokenizer``  the deployed model.tar.gz's preprocess.py, vocabulary and baseline, loaded
                 with the BeautifulSoup and Porter-stemmer files the asset carries
- ``metrics``    the figures → PutMetricData
- ``handler``    read, compare, publish, log one JSON line
"""
