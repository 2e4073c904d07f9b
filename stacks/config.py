"""The one typed configuration of the CDK app, read from `cdk.json` context.

Every setting is a flat context key prefixed with ``sentiment:`` so that any of them can be
overridden on the command line (``npx cdk deploy --all -c sentiment:endpointMode=serverless``).
Values given with ``-c`` arrive as strings, so every reader accepts the string form too.
Unknown ``sentiment:`` keys are errors: a typo must not silently fall back to a default.
Every setting's type, default, bounds and cross-checks are here, in one place (hence the
length): the stacks receive checked values only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from contract import hyperparameters
from contract.capture import DEFAULT_CAPTURE_PERCENT, DEFAULT_CAPTURE_RETENTION_DAYS
from contract.drift import Thresholds
from contract.feedback import DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY, DEFAULT_FEEDBACK_RETENTION_DAYS
from contract.promotion import DEFAULT_TOLERANCE
from stacks.fingerprint import FINGERPRINT_LENGTH

CONTEXT_PREFIX = "sentiment:"

# SageMaker lowercases resource names in ARNs, and IAM matches ARNs case-sensitively: a
# lowercase prefix is what lets the policies name "training-job/<prefix>-*" exactly. It also
# names the stacks, so it must start with a letter.
_NAME_PREFIX = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_ENDPOINT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_PYTORCH_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_PYTHON_VERSION = re.compile(r"^py3\d{1,2}$")

# Job names are "<prefix>-<16 hex digits of the fingerprint>[-<retry>]", at most 63 characters.
MAX_NAME_PREFIX_LENGTH = 40
# The CloudFormation custom-resource wait, which the Provider framework cannot exceed.
MAX_TRAINING_WAIT_MINUTES = 60
# What a job takes beyond its run time: starting the instance, pulling the image, installing
# requirements.txt, and uploading model.tar.gz (about 5 minutes on ml.m5.xlarge); doubled.
TRAINING_OVERHEAD_MINUTES = 10
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096)


class ConfigError(ValueError):
    """A context value in cdk.json (or given with -c) is missing its mark."""


class EndpointMode(StrEnum):
    REALTIME = "realtime"
    SERVERLESS = "serverless"


class StoragePolicy(StrEnum):
    """What deleting the stacks does to the data, model-artifact and log buckets."""

    RETAIN = "retain"
    DESTROY = "destroy"


@dataclass(frozen=True)
class PyTorchImages:
    """The AWS Deep Learning Container release for both training and serving.

    2.6.0 / py312 is the newest PyTorch release with both a SageMaker training and a
    SageMaker inference CPU image; the model is developed on torch 2.13 and saves plain
    state_dict tensors (loaded with weights_only=True), which load on any torch 2.x.
    """

    framework_version: str = "2.6.0"
    python_version: str = "py312"


@dataclass(frozen=True)
class TrainingSettings:
    instance_type: str = "ml.m5.xlarge"
    volume_size_gb: int = 30
    max_runtime_minutes: int = 50
    use_spot: bool = False
    # Spot only: the job's whole life, waiting for capacity included (>= max_runtime_minutes).
    max_wait_minutes: int = 60
    # Passed to train.py as "--key value"; empty means the script's own defaults.
    hyperparameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    wait_timeout_minutes: int = MAX_TRAINING_WAIT_MINUTES
    poll_interval_seconds: int = 60
    # The promotion gate in the job (model/promotion_gate.py): how much lower than the
    # serving model's a figure may be, and whether a refused model is promoted anyway.
    promotion_tolerance: float = DEFAULT_TOLERANCE
    force_promotion: bool = False

    @property
    def gate_hyperparameters(self) -> dict[str, str]:
        """The gate's settings as hyperparameters: passed to train.py like the others, but
        not part of the job name's hash (stacks/training.py)."""
        return hyperparameters.gate_hyperparameters(self.promotion_tolerance, self.force_promotion)


@dataclass(frozen=True)
class EndpointSettings:
    name: str
    mode: EndpointMode = EndpointMode.REALTIME
    instance_type: str = "ml.m5.large"
    min_instances: int = 1
    max_instances: int = 2
    # Off for one deployment to change instance_type: SageMaker refuses to update an
    # endpoint's instance type while its variant is registered for autoscaling.
    autoscaling: bool = True
    # Target-tracking goal: invocations per instance per minute.
    invocations_per_instance: int = 300
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    latency_alarm_ms: int = 1000
    # Blue/green: how long the new fleet is watched by the rollback alarms before the old
    # one is terminated.
    bake_minutes: int = 10


@dataclass(frozen=True)
class ApiSettings:
    rate_limit: float = 10.0
    burst_limit: int = 20
    # API Gateway needs one account-wide role to write logs; let this app create it unless
    # the account already has one.
    create_cloudwatch_role: bool = True


@dataclass(frozen=True)
class ShadowSettings:
    """Shadow testing (stacks/shadow.py): the newly trained model answers a copy of each
    request in a shadow variant, unseen, while the pinned job's model answers the callers."""

    enabled: bool = False
    # The training job whose model serves production while shadow testing is on.
    production_training_job: str | None = None

    def shadows(self, trained_job: str) -> bool:
        """Whether the model of ``trained_job`` (the job name the deployment trains under)
        runs as the shadow: shadow testing is on and the pin names another job. A pin on that
        job, or on a retry of it (``<name>-2``...), serves it in production, alone."""
        pin = self.production_training_job
        return (
            self.enabled
            and pin is not None
            and not re.fullmatch(rf"{re.escape(trained_job)}(?:-\d+)?", pin)
        )


@dataclass(frozen=True)
class CaptureSettings:
    """What the endpoint is asked and answers, recorded under the artifact bucket's capture/."""

    # The share of requests recorded, in whole percent as SageMaker takes it; 0 records none.
    percent: int = DEFAULT_CAPTURE_PERCENT
    # Records are deleted this many days after they are written (a lifecycle rule).
    retention_days: int = DEFAULT_CAPTURE_RETENTION_DAYS

    @property
    def enabled(self) -> bool:
        return self.percent > 0


@dataclass(frozen=True)
class FeedbackSettings:
    """Visitors' word on verdicts (POST /feedback), kept under the artifact bucket's feedback/."""

    # What one address may add in a UTC day; 0 takes no feedback (no route, no buttons).
    per_source_per_day: int = DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY
    # Records are deleted this many days after they are written (a lifecycle rule).
    retention_days: int = DEFAULT_FEEDBACK_RETENTION_DAYS

    @property
    def enabled(self) -> bool:
        return self.per_source_per_day > 0


@dataclass(frozen=True)
class DriftSettings:
    """The scheduled drift report over captured traffic (stacks/drift_monitor.py)."""

    # How often it runs, and how far back each run looks.
    schedule_hours: int = 24
    window_hours: int = 168
    # Its alarms' thresholds, the ones `sentiment monitor` applies by default.
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class SentimentConfig:
    training: TrainingSettings
    endpoint: EndpointSettings
    api: ApiSettings
    name_prefix: str = "imdb-sentiment"
    # Relative to the project root.
    prepared_data_dir: Path = Path("data/prepared")
    storage_policy: StoragePolicy = StoragePolicy.RETAIN
    log_retention_days: int = 30
    images: PyTorchImages = PyTorchImages()
    capture: CaptureSettings = CaptureSettings()
    drift: DriftSettings = DriftSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    shadow: ShadowSettings = ShadowSettings()

    @property
    def retains_storage(self) -> bool:
        return self.storage_policy is StoragePolicy.RETAIN


T = TypeVar("T")


class _ContextReader:
    """Typed access to the ``sentiment:`` context keys, remembering which ones were read."""

    def __init__(self, context: Mapping[str, Any]) -> None:
        self._values = {
            key.removeprefix(CONTEXT_PREFIX): value
            for key, value in context.items()
            if key.startswith(CONTEXT_PREFIX)
        }
        self._read: set[str] = set()

    def _get(self, key: str, default: T, parse: Callable[[Any], T]) -> T:
        self._read.add(key)
        if key not in self._values or self._values[key] is None:
            return default
        raw = self._values[key]
        try:
            return parse(raw)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"context {CONTEXT_PREFIX}{key}={raw!r}: {error}") from None

    def string(self, key: str, default: str, pattern: re.Pattern[str] | None = None) -> str:
        def parse(raw: Any) -> str:
            if not isinstance(raw, str):
                raise TypeError("expected a string")
            if pattern is not None and not pattern.fullmatch(raw):
                raise ValueError(f"expected a value matching {pattern.pattern}")
            return raw

        return self._get(key, default, parse)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        def parse(raw: Any) -> int:
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise TypeError("expected an integer")
            value = int(raw)
            if not low <= value <= high:
                raise ValueError(f"expected an integer from {low} to {high}")
            return value

        return self._get(key, default, parse)

    def number(self, key: str, default: float, low: float, high: float) -> float:
        def parse(raw: Any) -> float:
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise TypeError("expected a number")
            value = float(raw)
            if not low <= value <= high:
                raise ValueError(f"expected a number from {low} to {high}")
            return value

        return self._get(key, default, parse)

    def boolean(self, key: str, default: bool) -> bool:
        def parse(raw: Any) -> bool:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in {"true", "false"}:
                return raw.lower() == "true"
            raise ValueError("expected true or false")

        return self._get(key, default, parse)

    def choice(self, key: str, default: T, choices: Callable[[str], T]) -> T:
        return self._get(key, default, choices)

    def hyperparameters(self, key: str) -> Mapping[str, str]:
        def parse(raw: Any) -> Mapping[str, str]:
            return MappingProxyType(hyperparameters.from_context(raw))

        return self._get(key, MappingProxyType({}), parse)

    def unknown_keys(self) -> list[str]:
        return sorted(CONTEXT_PREFIX + key for key in self._values.keys() - self._read)


def load_config(context: Mapping[str, Any], project_root: Path) -> SentimentConfig:
    """Build and validate the configuration from the app's context (all keys, any origin)."""
    read = _ContextReader(context)
    defaults = SentimentConfig(TrainingSettings(), EndpointSettings(name=""), ApiSettings())
    name_prefix = read.string("namePrefix", defaults.name_prefix, _NAME_PREFIX)
    if len(name_prefix) > MAX_NAME_PREFIX_LENGTH:
        raise ConfigError(
            f"context {CONTEXT_PREFIX}namePrefix: at most {MAX_NAME_PREFIX_LENGTH} characters"
        )
    prepared = Path(read.string("preparedDataDir", str(defaults.prepared_data_dir)))
    defaults_training = defaults.training
    training = TrainingSettings(
        instance_type=read.string(
            "trainingInstanceType", defaults_training.instance_type, _INSTANCE_TYPE
        ),
        volume_size_gb=read.integer(
            "trainingVolumeSizeGb", defaults_training.volume_size_gb, 1, 512
        ),
        max_runtime_minutes=read.integer(
            "trainingMaxRuntimeMinutes", defaults_training.max_runtime_minutes, 1, 28 * 24 * 60
        ),
        use_spot=read.boolean("trainingUseSpot", defaults_training.use_spot),
        max_wait_minutes=read.integer(
            "trainingMaxWaitMinutes", defaults_training.max_wait_minutes, 1, 28 * 24 * 60
        ),
        hyperparameters=read.hyperparameters("hyperparameters"),
        wait_timeout_minutes=read.integer(
            "trainingWaitMinutes",
            defaults_training.wait_timeout_minutes,
            5,
            MAX_TRAINING_WAIT_MINUTES,
        ),
        poll_interval_seconds=read.integer(
            "trainingPollSeconds", defaults_training.poll_interval_seconds, 10, 300
        ),
        promotion_tolerance=read.choice(
            "promotionTolerance", defaults_training.promotion_tolerance, _promotion_tolerance
        ),
        force_promotion=read.boolean("forcePromotion", defaults_training.force_promotion),
    )
    _check_training_fits_the_wait(training)

    defaults_endpoint = EndpointSettings(name=name_prefix)
    endpoint = EndpointSettings(
        name=read.string("endpointName", name_prefix, _ENDPOINT_NAME),
        mode=read.choice("endpointMode", defaults_endpoint.mode, EndpointMode),
        instance_type=read.string(
            "endpointInstanceType", defaults_endpoint.instance_type, _INSTANCE_TYPE
        ),
        min_instances=read.integer("endpointMinInstances", defaults_endpoint.min_instances, 1, 100),
        max_instances=read.integer("endpointMaxInstances", defaults_endpoint.max_instances, 1, 100),
        autoscaling=read.boolean("endpointAutoscaling", defaults_endpoint.autoscaling),
        invocations_per_instance=read.integer(
            "endpointInvocationsPerInstance", defaults_endpoint.invocations_per_instance, 1, 100_000
        ),
        serverless_memory_mb=read.choice(
            "serverlessMemoryMb", defaults_endpoint.serverless_memory_mb, _serverless_memory
        ),
        serverless_max_concurrency=read.integer(
            "serverlessMaxConcurrency", defaults_endpoint.serverless_max_concurrency, 1, 200
        ),
        latency_alarm_ms=read.integer(
            "latencyAlarmMs", defaults_endpoint.latency_alarm_ms, 1, 60_000
        ),
        bake_minutes=read.integer("deploymentBakeMinutes", defaults_endpoint.bake_minutes, 0, 60),
    )
    if len(endpoint.name) > 63:
        raise ConfigError(f"context {CONTEXT_PREFIX}endpointName: at most 63 characters")
    if endpoint.max_instances < endpoint.min_instances:
        raise ConfigError(
            f"context {CONTEXT_PREFIX}endpointMaxInstances ({endpoint.max_instances}) is below "
            f"{CONTEXT_PREFIX}endpointMinInstances ({endpoint.min_instances})"
        )

    defaults_api = defaults.api
    api = ApiSettings(
        rate_limit=read.number("apiRateLimit", defaults_api.rate_limit, 0.1, 10_000),
        burst_limit=read.integer("apiBurstLimit", defaults_api.burst_limit, 1, 5_000),
        create_cloudwatch_role=read.boolean(
            "apiCreateCloudWatchRole", defaults_api.create_cloudwatch_role
        ),
    )
    defaults_images = defaults.images
    capture = CaptureSettings(
        percent=read.integer("capturePercent", defaults.capture.percent, 0, 100),
        retention_days=read.integer(
            "captureRetentionDays", defaults.capture.retention_days, 1, 3650
        ),
    )
    feedback = FeedbackSettings(
        per_source_per_day=read.integer(
            "feedbackPerSourcePerDay", defaults.feedback.per_source_per_day, 0, 10_000
        ),
        retention_days=read.integer(
            "feedbackRetentionDays", defaults.feedback.retention_days, 1, 3650
        ),
    )
    drift = _drift_settings(read, defaults.drift)
    shadow = _shadow_settings(read, name_prefix, endpoint)
    config = SentimentConfig(
        name_prefix=name_prefix,
        prepared_data_dir=prepared if prepared.is_absolute() else project_root / prepared,
        storage_policy=read.choice("removalPolicy", defaults.storage_policy, StoragePolicy),
        log_retention_days=read.choice(
            "logRetentionDays", defaults.log_retention_days, _log_retention
        ),
        images=PyTorchImages(
            framework_version=read.string(
                "pytorchVersion", defaults_images.framework_version, _PYTORCH_VERSION
            ),
            python_version=read.string(
                "pythonVersion", defaults_images.python_version, _PYTHON_VERSION
            ),
        ),
        training=training,
        endpoint=endpoint,
        api=api,
        capture=capture,
        drift=drift,
        feedback=feedback,
        shadow=shadow,
    )
    unknown = read.unknown_keys()
    if unknown:
        raise ConfigError(f"unknown context keys: {', '.join(unknown)} (see the README)")
    return config


def _drift_settings(read: _ContextReader, defaults: DriftSettings) -> DriftSettings:
    limits = defaults.thresholds
    return DriftSettings(
        schedule_hours=read.integer("driftScheduleHours", defaults.schedule_hours, 1, 24 * 7),
        window_hours=read.integer("driftWindowHours", defaults.window_hours, 1, 24 * 365),
        thresholds=Thresholds(
            length_psi=read.number("driftLengthPsi", limits.length_psi, 0, 100),
            score_psi=read.number("driftScorePsi", limits.score_psi, 0, 100),
            oov_rate_increase=read.number("driftOovRateIncrease", limits.oov_rate_increase, 0, 1),
            low_confidence_increase=read.number(
                "driftLowConfidenceIncrease", limits.low_confidence_increase, 0, 1
            ),
            feedback_accuracy=read.number("driftFeedbackAccuracy", limits.feedback_accuracy, 0, 1),
            min_feedback=read.integer("driftMinFeedback", limits.min_feedback, 1, 1_000_000),
            min_records=read.integer("driftMinRecords", limits.min_records, 1, 1_000_000),
        ),
    )


def _shadow_settings(
    read: _ContextReader, name_prefix: str, endpoint: EndpointSettings
) -> ShadowSettings:
    job_name = re.compile(rf"{re.escape(name_prefix)}-[0-9a-f]{{{FINGERPRINT_LENGTH}}}(?:-\d+)?")

    def pin(raw: Any) -> str | None:
        if not isinstance(raw, str):
            raise TypeError("expected a training job name")
        if raw and not job_name.fullmatch(raw):
            raise ValueError(
                f"expected one of this app's training jobs, {name_prefix}-<16 hex digits>"
                "[-<retry>], as the model stack's outputs name it"
            )
        return raw or None

    shadow = ShadowSettings(
        enabled=read.boolean("shadowDeployment", False),
        production_training_job=read.choice("productionTrainingJob", None, pin),
    )
    key, pin_key = f"{CONTEXT_PREFIX}shadowDeployment", f"{CONTEXT_PREFIX}productionTrainingJob"
    if shadow.enabled and endpoint.mode is EndpointMode.SERVERLESS:
        raise ConfigError(
            f"context {key}=true needs a real-time endpoint: SageMaker's serverless endpoints "
            "support neither shadow variants nor more than one production variant; set "
            f"{CONTEXT_PREFIX}endpointMode=realtime, or turn shadow testing off"
        )
    if shadow.enabled and shadow.production_training_job is None:
        raise ConfigError(
            f"context {key}=true needs {pin_key}: the training job whose model keeps serving "
            "production while the newly trained one runs as the shadow (the model stack's "
            "ProductionTrainingJobName output, TrainingJobName before shadow testing)"
        )
    if not shadow.enabled and shadow.production_training_job is not None:
        raise ConfigError(
            f'context {pin_key} is read only with {key}=true: set it to "" (a pin left '
            "behind would put its model back in production when shadow testing is next on)"
        )
    return shadow


def _check_training_fits_the_wait(training: TrainingSettings) -> None:
    # A job that may outlive the deployment's wait fails the deployment while it still runs
    # and bills; the README explains how to train longer jobs outside CloudFormation.
    if training.use_spot and training.max_wait_minutes < training.max_runtime_minutes:
        raise ConfigError(
            f"context {CONTEXT_PREFIX}trainingMaxWaitMinutes must be at least "
            f"{CONTEXT_PREFIX}trainingMaxRuntimeMinutes for spot training"
        )
    longest = training.max_wait_minutes if training.use_spot else training.max_runtime_minutes
    if longest + TRAINING_OVERHEAD_MINUTES > training.wait_timeout_minutes:
        raise ConfigError(
            f"the training job may take {longest} minutes plus about "
            f"{TRAINING_OVERHEAD_MINUTES} to start and upload, but the deployment waits only "
            f"{training.wait_timeout_minutes} ({CONTEXT_PREFIX}trainingWaitMinutes, at most "
            f"{MAX_TRAINING_WAIT_MINUTES}); shorten the job, or train it outside the deployment "
            "and deploy its model (README: Deploying to AWS)"
        )


def _promotion_tolerance(raw: Any) -> float:
    # Bounded by the hyperparameter's own schema, which train.py applies too.
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TypeError("expected a number")
    return float(hyperparameters.BY_NAME["promotion-tolerance"].parse(str(raw)))


def _serverless_memory(raw: Any) -> int:
    value = int(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else None
    if value not in {1024, 2048, 3072, 4096, 5120, 6144}:
        raise ValueError("expected 1024, 2048, 3072, 4096, 5120 or 6144 (MB)")
    return value


def _log_retention(raw: Any) -> int:
    value = int(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else None
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"expected one of {', '.join(map(str, LOG_RETENTION_DAYS))} (days)")
    return value
