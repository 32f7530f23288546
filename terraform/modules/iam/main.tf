# IAM roles of the ECS tasks, least privilege: each role names the buckets, prefixes, secret, log groups,
# repositories, cluster and task-definition families it needs, and nothing else.
#
#   execution roles (used by the ECS agent to start a task: pull the image, write logs, read secrets)
#     dagster_execution  webserver, daemon, code location and run tasks
#     bento_execution    the BentoML service (no secret, its own repository and log group)
#   task roles (what the code inside the container may call)
#     webserver  read compute logs; stop or describe run tasks ("Terminate" in the UI)
#     daemon     the EcsRunLauncher: register run task definitions, run, describe, stop and tag run tasks,
#                pass the run roles, read run logs; nothing on the data buckets
#     code       the gRPC code server: sensors read the landing zone; definitions read lake and MLflow
#     run        one task per run: read and write landing/archive, lake, MLflow artifacts, compute logs
#   The BentoML service gets no task role at all: its model is baked into its image.
locals {
  arn_prefix          = "arn:${var.partition}"
  cluster_arn         = "${local.arn_prefix}:ecs:${var.region}:${var.account_id}:cluster/${var.cluster_name}"
  cluster_tasks_arn   = "${local.arn_prefix}:ecs:${var.region}:${var.account_id}:task/${var.cluster_name}/*"
  run_task_definition = "${local.arn_prefix}:ecs:${var.region}:${var.account_id}:task-definition/${var.run_task_definition_prefix}*"

  # A log group and its streams: CreateLogStream is authorized on the group, PutLogEvents and
  # GetLogEvents on the streams (arn:...:log-group:NAME:log-stream:STREAM).
  log_resources = { for name, arn in var.log_group_arns : name => [arn, "${arn}:*"] }

  data_bucket_arns = [for name in ["landing", "lake", "mlflow", "dagster"] : var.bucket_arns[name]]
  read_bucket_arns = [for name in ["landing", "lake", "mlflow"] : var.bucket_arns[name]]
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["${local.arn_prefix}:ecs:${var.region}:${var.account_id}:*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }
}

# ---------------------------------------------------------------------------------------------------
# Execution roles
# ---------------------------------------------------------------------------------------------------
resource "aws_iam_role" "dagster_execution" {
  name               = "${var.name_prefix}-dagster-execution"
  description        = "ECS agent for the Dagster services and run tasks: pull images, write logs, read the database secret"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "dagster_execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid       = "PullDagsterAndCodeImages"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [var.ecr_repository_arns["dagster"], var.ecr_repository_arns["code"]]
  }

  statement {
    sid     = "WriteDagsterLogs"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = flatten([for name in ["webserver", "daemon", "code", "runs"] : local.log_resources[name]])
  }

  statement {
    sid       = "ReadDatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.database_secret_arn]
  }

  statement {
    sid       = "DecryptDatabaseSecret"
    actions   = ["kms:Decrypt"]
    resources = [var.secrets_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "dagster_execution" {
  name   = "start-dagster-tasks"
  role   = aws_iam_role.dagster_execution.id
  policy = data.aws_iam_policy_document.dagster_execution.json
}

resource "aws_iam_role" "bento_execution" {
  name               = "${var.name_prefix}-bento-execution"
  description        = "ECS agent for the BentoML service: pull its image, write its logs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "bento_execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid       = "PullBentoImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [var.ecr_repository_arns["bento"]]
  }

  statement {
    sid       = "WriteBentoLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = local.log_resources["bento"]
  }
}

resource "aws_iam_role_policy" "bento_execution" {
  name   = "start-bento-tasks"
  role   = aws_iam_role.bento_execution.id
  policy = data.aws_iam_policy_document.bento_execution.json
}

# ---------------------------------------------------------------------------------------------------
# Task roles
# ---------------------------------------------------------------------------------------------------
resource "aws_iam_role" "webserver" {
  name               = "${var.name_prefix}-dagster-webserver"
  description        = "Dagster webserver: read compute logs, terminate run tasks"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "webserver" {
  statement {
    sid       = "ReadComputeLogs"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arns["dagster"]}/${var.compute_log_prefix}/*"]
  }

  statement {
    sid       = "ListComputeLogs"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arns["dagster"]]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.compute_log_prefix}/*"]
    }
  }

  statement {
    sid       = "DecryptComputeLogs"
    actions   = ["kms:Decrypt"]
    resources = [var.s3_kms_key_arn]
  }

  statement {
    sid       = "TerminateRunTasks"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [local.cluster_tasks_arn]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }
}

resource "aws_iam_role_policy" "webserver" {
  name   = "dagster-webserver"
  role   = aws_iam_role.webserver.id
  policy = data.aws_iam_policy_document.webserver.json
}

resource "aws_iam_role" "daemon" {
  name               = "${var.name_prefix}-dagster-daemon"
  description        = "Dagster daemon: the EcsRunLauncher starts one ECS task per run"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "daemon" {
  statement {
    sid = "RegisterAndInspectRunTaskDefinitions"
    # These two ECS actions have no resource-level permissions.
    actions   = ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "RunTasksFromRunFamiliesOnThisClusterOnly"
    actions   = ["ecs:RunTask"]
    resources = [local.run_task_definition]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  statement {
    sid       = "WatchAndStopTasksOnThisCluster"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [local.cluster_tasks_arn]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  statement {
    sid       = "TagRunTasksAtLaunch"
    actions   = ["ecs:TagResource"]
    resources = [local.cluster_tasks_arn]
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }

  statement {
    # The launcher copies the daemon's own subnets and security groups onto each run task, reading them
    # from the daemon task's network interface. Describe* has no resource-level permissions.
    sid       = "ReadOwnNetworkInterface"
    actions   = ["ec2:DescribeNetworkInterfaces"]
    resources = ["*"]
  }

  statement {
    sid       = "PassRunRolesToEcsOnly"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.run.arn, aws_iam_role.dagster_execution.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadRunLogsForFailureMessages"
    actions   = ["logs:GetLogEvents"]
    resources = local.log_resources["runs"]
  }
}

resource "aws_iam_role_policy" "daemon" {
  name   = "dagster-daemon"
  role   = aws_iam_role.daemon.id
  policy = data.aws_iam_policy_document.daemon.json
}

resource "aws_iam_role" "code" {
  name               = "${var.name_prefix}-dagster-code"
  description        = "Dagster code location (gRPC): sensors and definitions read the data buckets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "code" {
  statement {
    sid       = "ListDataBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = local.read_bucket_arns
  }

  statement {
    sid       = "ReadDataObjects"
    actions   = ["s3:GetObject"]
    resources = [for arn in local.read_bucket_arns : "${arn}/*"]
  }

  statement {
    sid       = "DecryptDataObjects"
    actions   = ["kms:Decrypt"]
    resources = [var.s3_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "code" {
  name   = "dagster-code-location"
  role   = aws_iam_role.code.id
  policy = data.aws_iam_policy_document.code.json
}

resource "aws_iam_role" "run" {
  name               = "${var.name_prefix}-dagster-run"
  description        = "One ECS task per Dagster run: read and write the data buckets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "run" {
  statement {
    sid       = "ListDataBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = local.data_bucket_arns
  }

  statement {
    sid = "ReadWriteDataObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [for arn in local.data_bucket_arns : "${arn}/*"]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.s3_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "run" {
  name   = "dagster-run"
  role   = aws_iam_role.run.id
  policy = data.aws_iam_policy_document.run.json
}
