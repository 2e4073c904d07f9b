"""The web page: a private S3 bucket behind CloudFront, with strict security headers."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from stacks.compliance import acknowledge, acknowledge_bucket_deployment
from stacks.storage import secure_bucket

CONFIG_FILE = "config.json"


def content_security_policy(api_origin: str) -> str:
    """Only this site's own files, and calls to the prediction API; no inline script."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "manifest-src 'self'",
            f"connect-src 'self' {api_origin}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


class Website(Construct):
    """Serves ``frontend/`` plus a generated config.json ({"apiUrl": ...}) over HTTPS."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        frontend_dir: Path,
        api_origin: str,
        api_url: str,
        access_logs: s3.IBucket,
    ) -> None:
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
                    access_control_max_age=Duration.days(730),
                    include_subdomains=True,
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
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
                s3_deployment.Source.json_data(CONFIG_FILE, {"apiUrl": api_url}),
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
