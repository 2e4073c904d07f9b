"""The web stack: the prediction API and Lambda, the CloudFront site, the monitoring."""

from __future__ import annotations

from typing import Any

import pytest
from cdk_stacks import joined, only, resources, role_statements, synthesized

from contract import limits
from contract.drift import METRIC_NAMES, METRIC_NAMESPACE


@pytest.fixture(scope="module")
def web() -> dict[str, Any]:
    return synthesized().template("web").to_json()


def logical_id(template: dict[str, Any], resource_type: str) -> str:
    (found,) = resources(template, resource_type)
    return found


def site_origin(template: dict[str, Any]) -> dict[str, Any]:
    distribution = logical_id(template, "AWS::CloudFront::Distribution")
    return {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}]]}


def test_stage_is_throttled_and_access_logged(web: dict[str, Any]) -> None:
    stage = only(web, "AWS::ApiGateway::Stage")
    (settings,) = stage["MethodSettings"]

    assert stage["StageName"] == "v1"
    assert settings["ThrottlingRateLimit"] == 10
    assert settings["ThrottlingBurstLimit"] == 20
    assert settings["DataTraceEnabled"] is False  # reviews never reach the logs
    assert "AccessLogs" in joined(stage["AccessLogSetting"]["DestinationArn"])
    assert '"status":"$context.status"' in stage["AccessLogSetting"]["Format"]


def test_post_predict_and_post_feedback_are_lambda_proxies(web: dict[str, Any]) -> None:
    methods = [
        method["Properties"] for method in resources(web, "AWS::ApiGateway::Method").values()
    ]
    routes = [
        route["Properties"]["PathPart"]
        for route in resources(web, "AWS::ApiGateway::Resource").values()
    ]

    assert sorted(method["HttpMethod"] for method in methods) == [
        "OPTIONS",
        "OPTIONS",
        "POST",
        "POST",
    ]
    assert sorted(routes) == ["feedback", "predict"]
    assert {
        method["Integration"]["Type"] for method in methods if method["HttpMethod"] == "POST"
    } == {"AWS_PROXY"}


def test_cors_allows_the_site_origin_only(web: dict[str, Any]) -> None:
    preflights = [
        method["Properties"]["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
        for method in resources(web, "AWS::ApiGateway::Method").values()
        if method["Properties"]["HttpMethod"] == "OPTIONS"
    ]
    distribution = logical_id(web, "AWS::CloudFront::Distribution")

    allowed = f'\'https://<{{"Fn::GetAtt": ["{distribution}", "DomainName"]}}>\''
    assert len(preflights) == 2
    for headers in preflights:
        assert joined(headers["method.response.header.Access-Control-Allow-Origin"]) == allowed
        assert headers["method.response.header.Access-Control-Allow-Methods"] == "'POST'"
    for response in resources(web, "AWS::ApiGateway::GatewayResponse").values():
        origin = response["Properties"]["ResponseParameters"][
            "gatewayresponse.header.Access-Control-Allow-Origin"
        ]
        assert joined(origin) == allowed


def test_prediction_lambda_knows_the_endpoint_and_the_site(web: dict[str, Any]) -> None:
    function = next(
        function["Properties"]
        for function in resources(web, "AWS::Lambda::Function").values()
        if function["Properties"].get("Handler") == "prediction.handler.handler"
    )

    assert function["Runtime"] == "python3.12"
    table = logical_id(web, "AWS::DynamoDB::Table")
    assert function["Environment"]["Variables"] == {
        "ENDPOINT_NAME": "imdb-sentiment",
        "ALLOWED_ORIGIN": site_origin(web),
        "MAX_REVIEW_CHARS": str(limits.MAX_REVIEW_CHARS),
        # Where it keeps each prediction for feedback, as long as the captured record.
        "PREDICTION_TABLE": {"Ref": table},
        "PREDICTION_RETENTION_DAYS": "30",
    }


def test_prediction_lambda_may_invoke_only_its_endpoint_and_keep_predictions(
    web: dict[str, Any],
) -> None:
    statements = role_statements(synthesized().stacks.web.route.handler.role)
    invoke = [s for s in statements if s["Action"] == "sagemaker:InvokeEndpoint"]

    assert len(invoke) == 1
    assert joined(invoke[0]["Resource"]).endswith(":endpoint/imdb-sentiment")
    assert {
        s["Action"] if isinstance(s["Action"], str) else "+".join(s["Action"]) for s in statements
    } == {
        "sagemaker:InvokeEndpoint",
        "dynamodb:PutItem",
        "logs:CreateLogStream+logs:PutLogEvents",
    }


def test_site_is_private_behind_cloudfront_over_https(web: dict[str, Any]) -> None:
    distribution = only(web, "AWS::CloudFront::Distribution")["DistributionConfig"]
    behavior = distribution["DefaultCacheBehavior"]
    (origin,) = distribution["Origins"]
    access_control = only(web, "AWS::CloudFront::OriginAccessControl")

    assert distribution["DefaultRootObject"] == "index.html"
    assert behavior["ViewerProtocolPolicy"] == "https-only"
    assert origin["OriginAccessControlId"]["Fn::GetAtt"][1] == "Id"
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert access_control["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    (bucket,) = resources(web, "AWS::S3::Bucket").values()
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    assert distribution["Logging"]["Prefix"] == "cloudfront/"


def test_security_headers(web: dict[str, Any]) -> None:
    config = only(web, "AWS::CloudFront::ResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    headers = config["SecurityHeadersConfig"]
    csp = joined(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    api = logical_id(web, "AWS::ApiGateway::RestApi")

    directives = dict(item.split(" ", 1) for item in csp.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp
    assert directives["connect-src"] == (
        f'\'self\' https://<{{"Ref": "{api}"}}>.execute-api.'
        '<{"Ref": "AWS::Region"}>.<{"Ref": "AWS::URLSuffix"}>'
    )
    assert directives["frame-ancestors"] == "'none'"
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"


def test_page_is_deployed_with_a_generated_config(web: dict[str, Any]) -> None:
    deployment = only(web, "Custom::CDKBucketDeployment")

    assert len(deployment["SourceObjectKeys"]) == 2  # frontend/ and config.json
    (markers,) = [m for m in deployment["SourceMarkers"] if m]
    api_url = markers.values()
    assert any("execute-api" in joined(value) for value in api_url)
    assert deployment["DistributionPaths"] == ["/*"]


def test_outputs_give_the_api_and_site_urls(web: dict[str, Any]) -> None:
    outputs = web["Outputs"]
    api = logical_id(web, "AWS::ApiGateway::RestApi")
    stage = logical_id(web, "AWS::ApiGateway::Stage")

    assert joined(outputs["ApiUrl"]["Value"]) == (
        f'https://<{{"Ref": "{api}"}}>.execute-api.<{{"Ref": "AWS::Region"}}>.'
        f'<{{"Ref": "AWS::URLSuffix"}}>/<{{"Ref": "{stage}"}}>/predict'
    )
    assert outputs["SiteUrl"]["Value"] == site_origin(web)


def test_serving_path_alarms_and_dashboard(web: dict[str, Any]) -> None:
    alarms = {
        (alarm["Properties"]["Namespace"], alarm["Properties"]["MetricName"])
        for alarm in resources(web, "AWS::CloudWatch::Alarm").values()
    }
    body = joined(only(web, "AWS::CloudWatch::Dashboard")["DashboardBody"])

    # The drift report's own alarms: tests/test_stacks_drift.py.
    drift = {(METRIC_NAMESPACE, metric) for metric in METRIC_NAMES.values()}
    assert alarms - drift == {
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/ApiGateway", "5XXError"),
    }
    for metric in ("ModelLatency", "Invocation5XXErrors", "Throttles", "5XXError"):
        assert metric in body
