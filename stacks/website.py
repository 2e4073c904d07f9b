"""The web page: a private S3 bucket behind CloudFront, with strict security headers."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from contract.web_page import (
    CONFIG_FILE,
    FRAME_OPTION,
    HSTS_INCLUDE_SUBDOMAINS,
    HSTS_MAX_AGE_SECONDS,
    REFERRER_POLICY,
    content_security_policy,
    page_settings,
)
from stacks.compliance import acknowledge, acknowledge_bucket_deployment
from stacks.storage import secure_bucket


def _enum_member(header_value: str) -> str:
    """The CDK enum member naming a header value: "no-referrer" is NO_REFERRER."""
    return header_value.upper().replace("-", "_")


class Website(Construct):
    """Serves ``frontend/`` plus a generated config.json (page_settings) over HTTPS."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        frontend_dir: Path,
        api_origin: str,
        api_url: str,
        access_logs: s3.IBucket,
        capture_retention_days: int | None = None,
        feedback_url: str | None = None,
        feedback_retention_days: int | None = None,
    ) -> None:
        """``capture_retention_days``: the page tells visitors their reviews are kept so long
        (None: not recorded); ``feedback_url``: where it sends feedback (None: asks none)."""
        super().__init__(scope, construct_id)
        # The page is rebuilt from the repository on every deployment: nothing to retain.
        self.bucket = secure_bucket(
            self, "Content", retain=False, access_logs=None, versioned=False
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "Only CloudFront reads this bucket (origin access control), and CloudFront's own "
            "access logs record every request for the page.",
        )
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="Strict security headers for the sentiment page",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(api_origin), override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.seconds(HSTS_MAX_AGE_SECONDS),
                    include_subdomains=HSTS_INCLUDE_SUBDOMAINS,
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption[_enum_member(FRAME_OPTION)],
                    override=True,
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy[_enum_member(REFERRER_POLICY)],
                    override=True,
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="IMDB sentiment page",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                response_headers_policy=headers,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                compress=True,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=access_logs,
            log_file_prefix="cloudfront/",
        )
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        self.deployment = s3_deployment.BucketDeployment(
            self,
            "Deploy",
            sources=[
                s3_deployment.Source.asset(str(frontend_dir)),
                s3_deployment.Source.json_data(
                    CONFIG_FILE,
                    page_settings(
                        api_url, capture_retention_days, feedback_url, feedback_retention_days
                    ),
                ),
            ],
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            # A retained copy of an old page is of no use: the page is rebuilt from the repo.
            retain_on_delete=False,
        )
        acknowledge_bucket_deployment(self.deployment, self.bucket, invalidates=True)
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The distribution uses the default *.cloudfront.net certificate, whose minimum "
            "TLS version CloudFront fixes; a custom domain and certificate would allow TLS 1.2+.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "No WAF: the page is static files; the API behind it is throttled.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "A public page meant for everyone: no geographic restriction.",
        )
