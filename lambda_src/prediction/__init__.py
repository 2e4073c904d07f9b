"""The prediction Lambda: `POST /predict` in, one SageMaker invocation, a verdict out.

Deployed, the handler is ``prediction.handler.handler`` (the asset root is ``lambda_src/``); the
local API emulator imports the same package as ``lambda_src.prediction`` and calls the same
function. The modules import each other relatively, so both names work, and use the standard
library and boto3 alone, which the Lambda runtime provides.

The modules follow a request through the function:

- ``settings``   the function's environment, read and checked
- ``request``    the proxy event → the review (and whether to explain its verdict), or a 4xx
- ``endpoint``   the review → the endpoint's verdict, every AWS failure mapped to a status
- ``responses``  the proxy response, with CORS and security headers
- ``handler``    parse, call, map errors, log one JSON line
- ``errors`` and ``logs``, shared by the others

The statuses and bodies are documented in ``lambda_src/openapi.json``.
"""
