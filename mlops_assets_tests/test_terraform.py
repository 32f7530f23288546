"""terraform/ checked without an AWS account: parse, wiring, security properties, checkov.

`terraform` itself cannot be installed on this machine, so nothing here plans or applies. What stands in:
every .tf file parses (python-hcl2); every module call passes exactly the variables the module declares
and every `var.`/`local.`/`module.`/resource reference resolves (a static `terraform validate`); the
properties the deployment promises are read from the files (private encrypted RDS, blocked public S3,
Fargate, /readyz); the cloud dagster.yaml validates against Dagster's own config schema and every
environment variable it reads is set by the ECS task definitions; and `checkov -d terraform` (from the
tools venv `make tools` builds) reports no failed check and only the suppressions listed here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 missing: `make install` installs the dev extra")
from hcl2.utils import SerializationOptions  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TF = REPO / "terraform"
MODULES = TF / "modules"
CHECKOV = REPO / ".venv-tools" / "bin" / "checkov"
_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)

# Every module directory the deployment is made of (modules per concern); the root calls each once.
EXPECTED_MODULES = {"network", "kms", "storage", "database", "secrets", "ecr", "logs", "iam", "alb", "ecs"}

# The only checkov suppressions allowed, each with its reason inline in the .tf file. Adding one to the
# code without adding it here fails the test: a new suppression is a decision for review, not a habit.
ALLOWED_SUPPRESSIONS = {
    ("CKV_AWS_144", "module.storage.module.landing.aws_s3_bucket.this"),
    ("CKV_AWS_144", "module.storage.module.lake.aws_s3_bucket.this"),
    ("CKV_AWS_144", "module.storage.module.mlflow.aws_s3_bucket.this"),
    ("CKV_AWS_144", "module.storage.module.dagster.aws_s3_bucket.this"),
    ("CKV_AWS_18", "module.storage.aws_s3_bucket.access_logs"),
    ("CKV_AWS_144", "module.storage.aws_s3_bucket.access_logs"),
    ("CKV_AWS_145", "module.storage.aws_s3_bucket.access_logs"),
    ("CKV_AWS_304", "module.secrets.aws_secretsmanager_secret_rotation.database"),
    ("CKV_AWS_336", "module.ecs.aws_ecs_task_definition.dagster"),
    ("CKV_AWS_336", "module.ecs.aws_ecs_task_definition.bento"),
}


# ---------------------------------------------------------------------------------------------------
# Reading terraform
# ---------------------------------------------------------------------------------------------------
def _tf_files() -> list[Path]:
    return sorted(p for p in TF.rglob("*.tf") if ".terraform" not in p.parts)


@cache
def _load(path: Path) -> dict:
    """Parsed once per session (parsing is the slow part); callers only read the result."""
    with path.open() as f:
        return hcl2.load(f, serialization_options=_OPTIONS)


class Module:
    """The declarations of one terraform module directory, merged over its .tf files."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.variables: dict[str, dict] = {}
        self.outputs: set[str] = set()
        self.locals: dict[str, object] = {}
        self.resources: dict[tuple[str, str], dict] = {}
        self.data: set[tuple[str, str]] = set()
        self.calls: dict[str, dict] = {}
        self.text = ""
        for path in sorted(directory.glob("*.tf")):
            parsed = _load(path)
            self.text += _strip_comments(path.read_text()) + "\n"
            for block in parsed.get("variable", []):
                self.variables.update(block)
            for block in parsed.get("output", []):
                self.outputs.update(block)
            for block in parsed.get("locals", []):
                self.locals.update(block)
            for block in parsed.get("resource", []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        self.resources[(rtype, name)] = body
            for block in parsed.get("data", []):
                for dtype, named in block.items():
                    self.data.update((dtype, name) for name in named)
            for block in parsed.get("module", []):
                self.calls.update(block)

    def resources_of(self, rtype: str) -> dict[str, dict]:
        return {name: body for (t, name), body in self.resources.items() if t == rtype}

    def resource(self, rtype: str, name: str) -> dict:
        assert (rtype, name) in self.resources, f"{self.dir.relative_to(REPO)} declares no {rtype}.{name}"
        return self.resources[(rtype, name)]

    def required_variables(self) -> set[str]:
        return {name for name, body in self.variables.items() if "default" not in body}


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("#", "//")))


@cache
def _at(directory: Path) -> Module:
    return Module(directory.resolve())


def _module(name: str) -> Module:
    return _at(MODULES / name)


def _block(body: dict, key: str) -> dict:
    """A nested block (python-hcl2 gives a list with one dict)."""
    value = body[key]
    return value[0] if isinstance(value, list) else value


# ---------------------------------------------------------------------------------------------------
# Parsing and wiring
# ---------------------------------------------------------------------------------------------------
def test_terraform_tree_is_there():
    names = {p.relative_to(TF).as_posix() for p in _tf_files()}
    for required in ("versions.tf", "main.tf", "variables.tf", "outputs.tf", "providers.tf"):
        assert required in names
    assert {p.name for p in MODULES.iterdir() if p.is_dir()} == EXPECTED_MODULES


@pytest.mark.parametrize("path", _tf_files(), ids=lambda p: p.relative_to(TF).as_posix())
def test_every_tf_file_parses(path: Path):
    parsed = _load(path)
    assert parsed, f"{path.relative_to(REPO)} parsed to nothing"


def test_aws_provider_is_pinned():
    versions = _load(TF / "versions.tf")["terraform"][0]
    aws = versions["required_providers"][0]["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert re.fullmatch(r"~> \d+\.\d+", aws["version"]), f"pin the AWS provider to one major: {aws['version']}"
    assert versions["required_version"]


def _module_dirs() -> list[Path]:
    return [TF, *sorted(p for p in MODULES.iterdir() if p.is_dir()), MODULES / "storage" / "bucket"]


def test_root_calls_every_module_once():
    root = _at(TF)
    sources = {name: body["source"] for name, body in root.calls.items()}
    assert {Path(s).name for s in sources.values()} == EXPECTED_MODULES
    for name, source in sources.items():
        assert source == f"./modules/{name}", f"module {name} comes from {source}"


@pytest.mark.parametrize("directory", _module_dirs(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_module_calls_pass_exactly_the_declared_variables(directory: Path):
    """What `terraform validate` would say about each module block: no missing or unknown argument."""
    caller = _at(directory)
    for name, body in caller.calls.items():
        callee = _at(directory / body["source"])
        passed = set(body) - {"source", "depends_on", "for_each", "count", "providers"}
        unknown = passed - set(callee.variables)
        missing = callee.required_variables() - passed
        assert not unknown, f"module {name} in {directory.relative_to(REPO)}: no such variable {sorted(unknown)}"
        assert not missing, f"module {name} in {directory.relative_to(REPO)}: required {sorted(missing)} not set"


@pytest.mark.parametrize("directory", _module_dirs(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_reference_resolves(directory: Path):
    """var., local., module.X.Y, data. and resource references all name something declared."""
    module = _at(directory)
    text = module.text
    problems = []
    for name in set(re.findall(r"\bvar\.(\w+)", text)) - set(module.variables):
        problems.append(f"var.{name}")
    for name in set(re.findall(r"\blocal\.(\w+)", text)) - set(module.locals):
        problems.append(f"local.{name}")
    for call, output in set(re.findall(r"\bmodule\.(\w+)\.(\w+)", text)):
        if call not in module.calls:
            problems.append(f"module.{call}")
            continue
        callee = _at(directory / module.calls[call]["source"])
        if output not in callee.outputs:
            problems.append(f"module.{call}.{output}")
    for dtype, name in set(re.findall(r"\bdata\.(aws_\w+)\.(\w+)", text)):
        if (dtype, name) not in module.data:
            problems.append(f"data.{dtype}.{name}")
    without_data = re.sub(r"\bdata\.aws_\w+\.\w+", "", text)
    declared_types = {rtype for rtype, _ in module.resources}
    for rtype, name in set(re.findall(r"(?<![\w.\"/-])(aws_\w+)\.(\w+)", without_data)):
        if rtype in declared_types and (rtype, name) not in module.resources:
            problems.append(f"{rtype}.{name}")
    assert not problems, f"{directory.relative_to(REPO)}: unresolved {sorted(problems)}"


# ---------------------------------------------------------------------------------------------------
# What the deployment promises
# ---------------------------------------------------------------------------------------------------
def test_prediction_api_is_health_checked_on_readyz():
    alb = _module("alb")
    health = _block(alb.resource("aws_lb_target_group", "bento"), "health_check")
    assert health["path"] == "/readyz"
    assert health["matcher"] == "200"
    listener = alb.resource("aws_lb_listener", "bento_https")
    assert listener["protocol"] == "HTTPS" and listener["port"] == 443
    assert "TLS13" in alb.variables["ssl_policy"]["default"]
    # The BentoML service registers with that target group, and the root hands it over.
    service = _module("ecs").resource("aws_ecs_service", "bento")
    assert _block(service, "load_balancer")["target_group_arn"] == "${var.bento_target_group_arn}"
    assert _at(TF).calls["ecs"]["bento_target_group_arn"] == "${module.alb.bento_target_group_arn}"
    assert alb.resource("aws_wafv2_web_acl_association", "bento")["resource_arn"] == "${aws_lb.bento.arn}"


def test_dagster_ui_is_internal():
    lb = _module("alb").resource("aws_lb", "dagster")
    assert lb["internal"] is True


def test_database_is_private_encrypted_and_protected():
    db = _module("database")
    rds = db.resource("aws_db_instance", "this")
    assert rds["publicly_accessible"] is False
    assert rds["storage_encrypted"] is True
    assert rds["kms_key_id"] == "${var.kms_key_arn}"
    assert rds["manage_master_user_password"] is True, "the password must come from Secrets Manager"
    assert "password" not in rds
    assert rds["iam_database_authentication_enabled"] is True
    assert rds["performance_insights_enabled"] is True
    assert rds["deletion_protection"] == "${var.deletion_protection}"
    assert db.variables["deletion_protection"]["default"] is True
    assert rds["backup_retention_period"] == "${var.backup_retention_days}"
    assert db.variables["backup_retention_days"]["default"] >= 7
    # Multi-AZ is an option, on unless turned off, and the root exposes it.
    assert rds["multi_az"] == "${var.multi_az}"
    assert db.variables["multi_az"]["default"] is True
    root = _at(TF)
    assert root.calls["database"]["multi_az"] == "${var.db_multi_az}"
    assert root.variables["db_multi_az"]["default"] is True
    assert root.calls["database"]["subnet_ids"] == "${module.network.private_subnet_ids}"
    force_ssl = [p for p in db.resource("aws_db_parameter_group", "this")["parameter"] if p["name"] == "rds.force_ssl"]
    assert force_ssl and force_ssl[0]["value"] == "1"


def test_s3_buckets_are_private_versioned_encrypted_and_tls_only():
    bucket = _at(MODULES / "storage" / "bucket")
    storage = _module("storage")
    for module in (bucket, storage):
        blocks = module.resources_of("aws_s3_bucket_public_access_block")
        assert blocks
        for name, body in blocks.items():
            flags = {k: body[k] for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")}
            assert all(v is True for v in flags.values()), f"{module.dir.name}: public access block {name}: {flags}"
        # Every bucket has its own public access block, versioning and policy.
        for name in module.resources_of("aws_s3_bucket"):
            for companion in ("aws_s3_bucket_public_access_block", "aws_s3_bucket_versioning", "aws_s3_bucket_policy"):
                assert name in module.resources_of(companion), f"{module.dir.name}: bucket {name} has no {companion}"
            status = _block(module.resource("aws_s3_bucket_versioning", name), "versioning_configuration")["status"]
            assert status == "Enabled"
    sse = _block(_block(bucket.resource("aws_s3_bucket_server_side_encryption_configuration", "this"), "rule"), "apply_server_side_encryption_by_default")
    assert sse["sse_algorithm"] == "aws:kms"
    assert "this" in bucket.resources_of("aws_s3_bucket_logging")
    assert "this" in bucket.resources_of("aws_s3_bucket_lifecycle_configuration")
    policy = _load(MODULES / "storage" / "bucket" / "main.tf")
    documents = [d["aws_iam_policy_document"]["this"] for d in policy["data"] if "aws_iam_policy_document" in d]
    conditions = [_block(s, "condition") for s in documents[0]["statement"]]
    assert {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]} in conditions
    # The four data buckets of the contract, each through the hardened bucket module.
    assert {name for name, body in storage.calls.items() if body["source"] == "./bucket"} == {"landing", "lake", "mlflow", "dagster"}


def test_ecs_services_run_on_fargate_in_private_subnets():
    ecs = _module("ecs")
    services = ecs.resources_of("aws_ecs_service")
    assert set(services) == {"webserver", "daemon", "code", "bento"}
    for name, body in services.items():
        assert body["launch_type"] == "FARGATE", name
        network = _block(body, "network_configuration")
        assert network["assign_public_ip"] is False, name
        assert network["subnets"] == "${var.private_subnet_ids}", name
    for name, body in ecs.resources_of("aws_ecs_task_definition").items():
        assert body["requires_compatibilities"] == ["FARGATE"], name
        assert body["network_mode"] == "awsvpc", name
    # One daemon at a time: a second would double-launch queued runs.
    daemon = services["daemon"]
    assert daemon["desired_count"] == 1 and daemon["deployment_maximum_percent"] == 100
    assert _at(TF).calls["ecs"]["private_subnet_ids"] == "${module.network.private_subnet_ids}"


def test_network_spans_two_azs_with_nat_and_flow_logs():
    network = _module("network")
    assert network.variables["az_count"]["default"] >= 2
    assert len(_at(TF).variables["availability_zones"]["default"]) >= 2
    assert "this" in network.resources_of("aws_nat_gateway")
    assert network.resource("aws_subnet", "public")["map_public_ip_on_launch"] is False
    assert network.resource("aws_flow_log", "this")["traffic_type"] == "ALL"


def test_log_groups_are_encrypted_with_retention():
    groups = {}
    for name in ("logs", "network", "alb", "database"):
        groups.update({f"{name}.{k}": v for k, v in _module(name).resources_of("aws_cloudwatch_log_group").items()})
    assert len(groups) >= 3
    for name, body in groups.items():
        assert body.get("kms_key_id"), f"{name} is not KMS-encrypted"
        assert body.get("retention_in_days"), f"{name} keeps logs forever"


def test_ecr_repositories_are_immutable_and_scanned():
    repo = _module("ecr").resource("aws_ecr_repository", "this")
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert _block(repo, "image_scanning_configuration")["scan_on_push"] is True
    assert _block(repo, "encryption_configuration")["encryption_type"] == "KMS"


def test_no_credentials_in_terraform_and_deploy_files():
    suspicious = re.compile(
        r"AKIA[0-9A-Z]{16}|aws_secret_access_key|BEGIN (RSA |EC )?PRIVATE KEY|postgresql://[^@\s]*:[^@\s]*@",
        re.IGNORECASE,
    )
    for path in TF.rglob("*"):
        if path.is_file() and ".terraform" not in path.parts:
            found = suspicious.search(path.read_text(errors="replace"))
            assert not found, f"{path.relative_to(REPO)}: looks like a credential: {found.group(0)!r}"
    for body in _at(TF).variables.values():
        assert "password" not in str(body.get("default", "")).lower()


# ---------------------------------------------------------------------------------------------------
# The cloud Dagster instance and how ECS feeds it
# ---------------------------------------------------------------------------------------------------
def _dagster_yaml() -> dict:
    return yaml.safe_load((TF / "dagster" / "dagster.yaml").read_text())


def _env_refs(node) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node)) if node else set()
    return set()


def _task_environment() -> tuple[set[str], set[str]]:
    """(plain environment, secrets) every Dagster container gets from the ecs and secrets modules."""
    ecs = _module("ecs")
    plain = set(ecs.locals["dagster_env"])
    secrets = {entry["name"] for entry in _module("secrets").locals["database_env"]}
    return plain, secrets


def test_cloud_instance_uses_ecs_run_launcher_queue_postgres_and_s3_logs():
    cfg = _dagster_yaml()
    assert (cfg["run_launcher"]["module"], cfg["run_launcher"]["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    assert cfg["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert cfg["run_monitoring"]["enabled"] is True
    assert set(cfg["storage"]) == {"postgres"}
    assert cfg["compute_logs"]["class"] == "S3ComputeLogManager"
    assert cfg["run_launcher"]["config"]["task_definition"]["requires_compatibilities"] == ["FARGATE"]


def test_cloud_instance_config_validates_against_dagsters_schema(monkeypatch):
    """Each block of the file Dagster will read on ECS, checked by the config schema of the class it names.

    Dagster has no public validator for a whole dagster.yaml; each configurable class publishes its schema
    (`config_type()`), and `dg.validate_run_config` checks a value against a schema through the public API.
    """
    import dagster as dg
    from dagster_aws.ecs import EcsRunLauncher
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_postgres import DagsterPostgresStorage

    cfg = _dagster_yaml()
    for name in _env_refs(cfg):
        monkeypatch.setenv(name, "5432" if name.endswith("_PORT") else "10" if name.endswith("_RUNS") else "x")
    blocks = {
        "run_coordinator": (dg.QueuedRunCoordinator, cfg["run_coordinator"]["config"]),
        "run_launcher": (EcsRunLauncher, cfg["run_launcher"]["config"]),
        "compute_logs": (S3ComputeLogManager, cfg["compute_logs"]["config"]),
        "storage": (DagsterPostgresStorage, cfg["storage"]["postgres"]),
    }

    def checker(name, cls):
        @dg.op(name=name, config_schema=cls.config_type())
        def _check(): ...

        return _check

    @dg.job
    def instance_blocks():
        for name, (cls, _) in blocks.items():
            checker(name, cls)()

    run_config = {"ops": {name: {"config": value} for name, (_, value) in blocks.items()}}
    dg.validate_run_config(instance_blocks, run_config)  # raises DagsterInvalidConfigError naming the path
    assert cfg["compute_logs"]["module"] == S3ComputeLogManager.__module__
    assert cfg["run_launcher"]["module"] == "dagster_aws.ecs"
    # The schema does catch a broken block: the same check refuses a coordinator limit that is not a number.
    bad = {**run_config, "ops": {**run_config["ops"], "run_coordinator": {"config": {"max_concurrent_runs": "many"}}}}
    with pytest.raises(dg.DagsterInvalidConfigError, match="max_concurrent_runs"):
        dg.validate_run_config(instance_blocks, bad)


def test_every_variable_the_instance_reads_is_set_by_ecs():
    plain, secrets = _task_environment()
    cfg = _dagster_yaml()
    unset = _env_refs(cfg) - plain - secrets
    assert not unset, f"dagster.yaml reads {sorted(unset)}, which no ECS task definition sets"
    launcher = cfg["run_launcher"]["config"]
    # Run tasks get their plain variables copied from the daemon, their secrets from Secrets Manager.
    assert set(launcher["env_vars"]) <= plain, sorted(set(launcher["env_vars"]) - plain)
    assert {"MLOPS_PG_PASSWORD", "PGPASSWORD"}.isdisjoint(launcher["env_vars"]), "passwords would land in clear text in the task definition"
    assert {s["name"] for s in launcher["secrets"]} == secrets
    # The environment-variable contract of the aws profile reaches every Dagster container and run.
    contract = {
        "MLOPS_PROFILE", "MLOPS_S3_BUCKET", "MLOPS_S3_PREFIX", "MLOPS_LAKE_DATA_PATH", "MLOPS_PG_HOST",
        "MLOPS_PG_PORT", "MLOPS_PG_DB", "MLFLOW_TRACKING_URI", "MLFLOW_ARTIFACTS_DESTINATION", "AWS_REGION",
        "DAGSTER_HOME",
    }  # fmt: skip
    assert contract <= plain, sorted(contract - plain)
    assert contract - {"DAGSTER_HOME"} <= set(launcher["env_vars"]), "DAGSTER_HOME is set by the image"
    assert {"MLOPS_PG_USER", "MLOPS_PG_PASSWORD"} <= secrets
    assert _module("ecs").locals["dagster_env"]["MLOPS_PROFILE"] == "aws"
    assert "@" in _module("ecs").locals["dagster_env"]["MLFLOW_TRACKING_URI"]
    assert ":" not in _module("ecs").locals["dagster_env"]["MLFLOW_TRACKING_URI"].split("//", 1)[1].split("@")[0].replace("${", "").replace("}", ""), "no password in the tracking URI"


def test_workspace_points_at_the_code_location_service():
    workspace = yaml.safe_load((TF / "dagster" / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    plain, _ = _task_environment()
    assert _env_refs(server) <= plain
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]
    assert server["location_name"] == pyproject["code_location_name"]
    code = _module("ecs").locals["dagster_services"]["code"]
    command = " ".join(code["command"])
    assert f"-m {pyproject['module_name']}" in command and f"--location-name {pyproject['code_location_name']}" in command


def test_images_carry_the_instance_config_and_run_unprivileged():
    dagster_home = _module("ecs").locals["dagster_home"]
    for name in ("code.Dockerfile", "dagster.Dockerfile"):
        text = (TF / "docker" / name).read_text()
        assert f"COPY terraform/dagster/dagster.yaml {dagster_home}/dagster.yaml" in text, name
        assert f"DAGSTER_HOME={dagster_home}" in text, name
        users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
        assert users and users[-1] not in {"root", "0"}, name
        assert "-c constraints.txt" in text, f"{name} must install the tested pins"


# ---------------------------------------------------------------------------------------------------
# checkov
# ---------------------------------------------------------------------------------------------------
def _checkov_reports() -> list[dict]:
    if not CHECKOV.exists():
        message = f"checkov not found at {CHECKOV.relative_to(REPO)}: run `make tools` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "WARNING"}
    proc = subprocess.run(
        # Not --quiet: it drops the skipped checks from the JSON, and with them the suppressions to review.
        [str(CHECKOV), "-d", "terraform", "-o", "json", "--skip-download"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    reports = json.loads(proc.stdout)
    return reports if isinstance(reports, list) else [reports]


@pytest.mark.slow
def test_checkov_finds_no_failed_check_and_only_reasoned_suppressions():
    reports = _checkov_reports()
    by_type = {r["check_type"]: r for r in reports}
    assert "terraform" in by_type, f"checkov ran no terraform scan: {sorted(by_type)}"
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for r in reports
        for c in r["results"].get("failed_checks", [])
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    for r in reports:
        assert r["summary"]["parsing_errors"] == 0, f"{r['check_type']}: files checkov could not parse"
    assert by_type["terraform"]["summary"]["passed"] > 400
    skipped = {}
    for r in reports:
        for c in r["results"].get("skipped_checks", []):
            resource = re.sub(r"\[[^\]]*\]", "", c["resource"])
            skipped[(c["check_id"], resource)] = (c.get("check_result") or {}).get("suppress_comment") or ""
    unexpected = set(skipped) - ALLOWED_SUPPRESSIONS
    assert not unexpected, f"new checkov suppressions, review and list them here: {sorted(unexpected)}"
    gone = ALLOWED_SUPPRESSIONS - set(skipped)
    assert not gone, f"suppressions no longer in the code, remove them from ALLOWED_SUPPRESSIONS: {sorted(gone)}"
    for key, reason in skipped.items():
        assert len(reason) >= 40, f"suppression {key} needs a written reason, got {reason!r}"
