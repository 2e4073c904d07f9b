"""CloudWatch log groups with the configured retention (nothing is kept forever by accident)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
}


def log_group(
    scope: Construct, construct_id: str, retention_days: int, name: str | None = None
) -> logs.LogGroup:
    """Operational logs: they go with the stack that writes them."""
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=_RETENTION[retention_days],
        removal_policy=RemovalPolicy.DESTROY,
    )


def vended_log_group(
    scope: Construct, construct_id: str, retention_days: int, name: str
) -> logs.LogGroup:
    """Logs a service delivers itself (Step Functions here), under /aws/vendedlogs/: CloudWatch
    Logs then needs no resource-policy entry for them, whose 5,120-character limit an account
    with many log groups would otherwise hit when the group is created."""
    return log_group(scope, construct_id, retention_days, f"/aws/vendedlogs/{name}")
