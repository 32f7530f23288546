# ECS on Fargate: the Dagster deployment and the prediction service.
#
#   webserver  dagster-webserver (the UI, behind the internal ALB)                 image: dagster
#   daemon     dagster-daemon: schedules, sensors, backfills, the run queue, run     image: dagster
#              monitoring. Its EcsRunLauncher starts ONE NEW TASK PER RUN from the code image, so a
#              backfill of N partitions becomes up to max_concurrent_runs tasks side by side.
#   code       the code location's gRPC server (mlops_assets.definitions), found   image: code
#              by the other two at code.<namespace>:4000 through Cloud Map
#   bento      the BentoML prediction service behind the public ALB (/readyz)       image: bento
#
# Run tasks are not declared here: the daemon registers their task definition (family
# <run_task_definition_prefix>...) from terraform/dagster/dagster.yaml and runs them in its own subnet
# with its own security group. Their log group, roles and size come from the environment set below.
locals {
  dagster_home = "/opt/dagster/dagster_home"
  workspace    = "/opt/dagster/app/workspace.yaml"
  code_port    = 4000
  web_port     = 3000

  # The environment-variable contract of the aws profile (README.md, "Environment contract"), plus what
  # terraform/dagster/dagster.yaml reads. Nothing secret: the password arrives through `secrets`.
  dagster_env = {
    MLOPS_PROFILE                = "aws"
    MLOPS_S3_BUCKET              = var.bucket_names["landing"]
    MLOPS_S3_PREFIX              = var.s3_prefix
    MLOPS_LAKE_DATA_PATH         = "s3://${var.bucket_names["lake"]}/${var.lake_prefix}"
    MLOPS_PG_HOST                = var.database_host
    MLOPS_PG_PORT                = tostring(var.database_port)
    MLOPS_PG_DB                  = var.database_name
    MLFLOW_TRACKING_URI          = "postgresql://${var.database_username}@${var.database_host}:${var.database_port}/${var.mlflow_database_name}"
    MLFLOW_ARTIFACTS_DESTINATION = "s3://${var.bucket_names["mlflow"]}/artifacts"
    MLOPS_MLFLOW_DB              = var.mlflow_database_name
    AWS_REGION                   = var.region
    AWS_DEFAULT_REGION           = var.region
    DAGSTER_HOME                 = local.dagster_home
    # libpq (Dagster, MLflow, DuckDB's postgres catalog) reads these: TLS always, password from PGPASSWORD.
    PGSSLMODE = "require"
    PGUSER    = var.database_username
    # dagster.yaml: compute logs, run queue, and the run tasks the EcsRunLauncher starts.
    DAGSTER_COMPUTE_LOGS_BUCKET        = var.bucket_names["dagster"]
    DAGSTER_COMPUTE_LOGS_PREFIX        = var.compute_log_prefix
    DAGSTER_MAX_CONCURRENT_RUNS        = tostring(var.max_concurrent_runs)
    DAGSTER_RUN_TASK_DEFINITION_PREFIX = var.run_task_definition_prefix
    DAGSTER_RUN_TASK_ROLE_ARN          = var.run_task_role_arn
    DAGSTER_RUN_EXECUTION_ROLE_ARN     = var.dagster_execution_role_arn
    DAGSTER_RUN_LOG_GROUP              = var.log_group_names["runs"]
    DAGSTER_CODE_SERVER_HOST           = "code.${aws_service_discovery_private_dns_namespace.this.name}"
    DAGSTER_CODE_SERVER_PORT           = tostring(local.code_port)
    # Where run tasks get each secret from (references, not values: see dagster.yaml `secrets`).
    MLOPS_PG_USER_SECRET     = "${var.database_secret_arn}:username::"
    MLOPS_PG_PASSWORD_SECRET = "${var.database_secret_arn}:password::"
    PGPASSWORD_SECRET        = "${var.database_secret_arn}:password::"
    # Quiet, non-interactive containers.
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR = "false"
    BENTOML_DO_NOT_TRACK                 = "True"
    PYTHONUNBUFFERED                     = "1"
  }
  dagster_environment = [for name in sort(keys(local.dagster_env)) : { name = name, value = local.dagster_env[name] }]

  dagster_services = {
    webserver = {
      image         = var.dagster_image
      task_role_arn = var.webserver_task_role_arn
      command       = ["dagster-webserver", "-h", "0.0.0.0", "-p", tostring(local.web_port), "-w", local.workspace]
      port          = local.web_port
      health        = "python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:${local.web_port}/server_info', timeout=5)\""
      cpu           = var.task_sizes["webserver"].cpu
      memory        = var.task_sizes["webserver"].memory
    }
    daemon = {
      image         = var.dagster_image
      task_role_arn = var.daemon_task_role_arn
      command       = ["dagster-daemon", "run", "-w", local.workspace]
      port          = 0
      health        = "dagster-daemon liveness-check"
      cpu           = var.task_sizes["daemon"].cpu
      memory        = var.task_sizes["daemon"].memory
    }
    code = {
      image         = var.code_image
      task_role_arn = var.code_task_role_arn
      # First make sure MLflow's database exists (idempotent), then serve the definitions over gRPC.
      command = ["sh", "-c", "python /opt/dagster/bin/create_databases.py && exec dagster code-server start -h 0.0.0.0 -p ${local.code_port} -m mlops_assets.definitions --location-name mlops_assets"]
      port          = local.code_port
      health        = "dagster api grpc-health-check -p ${local.code_port}"
      cpu           = var.task_sizes["code"].cpu
      memory        = var.task_sizes["code"].memory
    }
  }
}

# ---------------------------------------------------------------------------------------------------
# Cluster and service discovery
# ---------------------------------------------------------------------------------------------------
resource "aws_ecs_cluster" "this" {
  name = var.cluster_name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = var.logs_kms_key_arn
      logging    = "OVERRIDE"

      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = var.log_group_names["exec"]
      }
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]
}

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = "${var.name_prefix}.internal"
  description = "Private names of the Dagster services (code location gRPC)"
  vpc         = var.vpc_id
}

resource "aws_service_discovery_service" "code" {
  name = "code"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"

    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  health_check_custom_config {
    failure_threshold = 1
  }
}

# ---------------------------------------------------------------------------------------------------
# Security groups: each task talks to exactly what it needs
# ---------------------------------------------------------------------------------------------------
resource "aws_security_group" "webserver" {
  name        = "${var.name_prefix}-dagster-webserver"
  description = "Dagster webserver: UI from its ALB; out to the code location, PostgreSQL, AWS APIs"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name_prefix}-dagster-webserver" }
}

resource "aws_security_group" "daemon" {
  name        = "${var.name_prefix}-dagster-daemon-and-runs"
  description = "Dagster daemon and every run task it launches: no inbound; out to code location, PostgreSQL, AWS APIs"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name_prefix}-dagster-daemon-and-runs" }
}

resource "aws_security_group" "code" {
  name        = "${var.name_prefix}-dagster-code"
  description = "Dagster code location: gRPC from webserver and daemon; out to PostgreSQL, AWS APIs"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name_prefix}-dagster-code" }
}

resource "aws_security_group" "bento" {
  name        = "${var.name_prefix}-bento"
  description = "BentoML service: HTTP from its ALB; out to AWS APIs (image pull, logs)"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name_prefix}-bento" }
}

# Inbound
resource "aws_vpc_security_group_ingress_rule" "webserver_from_alb" {
  security_group_id            = aws_security_group.webserver.id
  description                  = "Dagster UI from its load balancer"
  referenced_security_group_id = var.dagster_alb_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = local.web_port
  to_port                      = local.web_port
}

resource "aws_vpc_security_group_ingress_rule" "code_from_webserver" {
  security_group_id            = aws_security_group.code.id
  description                  = "gRPC from the Dagster webserver"
  referenced_security_group_id = aws_security_group.webserver.id
  ip_protocol                  = "tcp"
  from_port                    = local.code_port
  to_port                      = local.code_port
}

resource "aws_vpc_security_group_ingress_rule" "code_from_daemon" {
  security_group_id            = aws_security_group.code.id
  description                  = "gRPC from the Dagster daemon and run tasks"
  referenced_security_group_id = aws_security_group.daemon.id
  ip_protocol                  = "tcp"
  from_port                    = local.code_port
  to_port                      = local.code_port
}

resource "aws_vpc_security_group_ingress_rule" "bento_from_alb" {
  security_group_id            = aws_security_group.bento.id
  description                  = "Prediction requests from the load balancer"
  referenced_security_group_id = var.bento_alb_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = var.bento_port
  to_port                      = var.bento_port
}

resource "aws_vpc_security_group_ingress_rule" "postgres_from_tasks" {
  for_each = {
    webserver = aws_security_group.webserver.id
    daemon    = aws_security_group.daemon.id
    code      = aws_security_group.code.id
  }

  security_group_id            = var.database_security_group_id
  description                  = "PostgreSQL from the Dagster ${each.key} (the daemon's group includes every run task)"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = var.database_port
  to_port                      = var.database_port
}

# Load balancers reach only their targets.
resource "aws_vpc_security_group_egress_rule" "dagster_alb_to_webserver" {
  security_group_id            = var.dagster_alb_security_group_id
  description                  = "To the Dagster webserver tasks"
  referenced_security_group_id = aws_security_group.webserver.id
  ip_protocol                  = "tcp"
  from_port                    = local.web_port
  to_port                      = local.web_port
}

resource "aws_vpc_security_group_egress_rule" "bento_alb_to_bento" {
  security_group_id            = var.bento_alb_security_group_id
  description                  = "To the BentoML tasks"
  referenced_security_group_id = aws_security_group.bento.id
  ip_protocol                  = "tcp"
  from_port                    = var.bento_port
  to_port                      = var.bento_port
}

# Outbound from the Dagster tasks
resource "aws_vpc_security_group_egress_rule" "to_code" {
  for_each = {
    webserver = aws_security_group.webserver.id
    daemon    = aws_security_group.daemon.id
  }

  security_group_id            = each.value
  description                  = "gRPC to the code location"
  referenced_security_group_id = aws_security_group.code.id
  ip_protocol                  = "tcp"
  from_port                    = local.code_port
  to_port                      = local.code_port
}

resource "aws_vpc_security_group_egress_rule" "to_postgres" {
  for_each = {
    webserver = aws_security_group.webserver.id
    daemon    = aws_security_group.daemon.id
    code      = aws_security_group.code.id
  }

  security_group_id            = each.value
  description                  = "PostgreSQL (Dagster storage, MLflow, DuckLake catalog)"
  referenced_security_group_id = var.database_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = var.database_port
  to_port                      = var.database_port
}

# HTTPS to AWS APIs (ECR, S3 through the gateway endpoint, Secrets Manager, CloudWatch, ECS) via the NAT.
resource "aws_vpc_security_group_egress_rule" "https" {
  for_each = {
    webserver = aws_security_group.webserver.id
    daemon    = aws_security_group.daemon.id
    code      = aws_security_group.code.id
    bento     = aws_security_group.bento.id
  }

  security_group_id = each.value
  description       = "HTTPS to AWS service endpoints"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# ---------------------------------------------------------------------------------------------------
# Dagster: webserver, daemon, code location
# ---------------------------------------------------------------------------------------------------
resource "aws_ecs_task_definition" "dagster" {
  #checkov:skip=CKV_AWS_336:Dagster writes instance files under DAGSTER_HOME and DuckDB/pandas spill to /tmp; a read-only root is unverified here (no AWS account), and run tasks registered by the EcsRunLauncher cannot set it anyway. The images run as a non-root user instead.
  for_each = local.dagster_services

  family                   = "${var.name_prefix}-dagster-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = var.dagster_execution_role_arn
  task_role_arn            = each.value.task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    {
      name      = each.key
      image     = each.value.image
      essential = true
      command   = each.value.command
      portMappings = each.value.port == 0 ? [] : [
        { containerPort = each.value.port, protocol = "tcp" }
      ]
      environment = concat(
        local.dagster_environment,
        # The code server tells Dagster which image its runs must use.
        each.key == "code" ? [{ name = "DAGSTER_CURRENT_IMAGE", value = each.value.image }] : [],
      )
      secrets                = var.database_secret_env
      privileged             = false
      readonlyRootFilesystem = false
      healthCheck = {
        command     = ["CMD-SHELL", each.value.health]
        interval    = 30
        timeout     = 10
        retries     = 3
        startPeriod = 120
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = var.log_group_names[each.key]
          awslogs-region        = var.region
          awslogs-stream-prefix = each.key
        }
      }
    }
  ])
}

resource "aws_ecs_service" "webserver" {
  name                               = "dagster-webserver"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.dagster["webserver"].arn
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  desired_count                      = 1
  deployment_maximum_percent         = 200
  deployment_minimum_healthy_percent = 100
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"
  health_check_grace_period_seconds  = 180

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.webserver.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  load_balancer {
    target_group_arn = var.dagster_target_group_arn
    container_name   = "webserver"
    container_port   = local.web_port
  }
}

resource "aws_ecs_service" "daemon" {
  name            = "dagster-daemon"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.dagster["daemon"].arn
  # Run tasks copy the daemon's launch type, subnet and security group (use_current_ecs_task_config), so
  # the daemon must be a plain FARGATE task: no capacity provider strategy here.
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  # Exactly one daemon, ever: a new one starts only after the old one stopped.
  desired_count                      = 1
  deployment_maximum_percent         = 100
  deployment_minimum_healthy_percent = 0
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.daemon.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

resource "aws_ecs_service" "code" {
  name                               = "dagster-code"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.dagster["code"].arn
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  desired_count                      = 1
  deployment_maximum_percent         = 200
  deployment_minimum_healthy_percent = 100
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.code.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  service_registries {
    registry_arn = aws_service_discovery_service.code.arn
  }
}

# ---------------------------------------------------------------------------------------------------
# BentoML prediction service
# ---------------------------------------------------------------------------------------------------
resource "aws_ecs_task_definition" "bento" {
  #checkov:skip=CKV_AWS_336:BentoML writes its runtime state (worker sockets, Prometheus multiprocess files, temp files) inside the container; a read-only root is unverified here (no AWS account). The image runs as BentoML's non-root user.
  family                   = "${var.name_prefix}-bento"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_sizes["bento"].cpu
  memory                   = var.task_sizes["bento"].memory
  execution_role_arn       = var.bento_execution_role_arn
  # No task role: the model is inside the image, the service calls no AWS API.

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    {
      name         = "bento"
      image        = var.bento_image
      essential    = true
      portMappings = [{ containerPort = var.bento_port, protocol = "tcp" }]
      environment = [
        { name = "MLOPS_DATASET", value = var.bento_dataset },
        { name = "BENTOML_DO_NOT_TRACK", value = "True" },
        { name = "BENTOML_PORT", value = tostring(var.bento_port) },
      ]
      privileged             = false
      readonlyRootFilesystem = false
      healthCheck = {
        command     = ["CMD-SHELL", "python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:${var.bento_port}/livez', timeout=5)\""]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = var.log_group_names["bento"]
          awslogs-region        = var.region
          awslogs-stream-prefix = "bento"
        }
      }
    }
  ])
}

resource "aws_ecs_service" "bento" {
  name                              = "bento"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.bento.arn
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  desired_count                     = var.bento_min_count
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  health_check_grace_period_seconds = 60

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.bento.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  load_balancer {
    target_group_arn = var.bento_target_group_arn
    container_name   = "bento"
    container_port   = var.bento_port
  }

  # Autoscaling owns the count once the service exists.
  lifecycle {
    ignore_changes = [desired_count]
  }
}

resource "aws_appautoscaling_target" "bento" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.bento.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.bento_min_count
  max_capacity       = var.bento_max_count
}

# Predictions are CPU-bound (a model call per request): scale on CPU.
resource "aws_appautoscaling_policy" "bento_cpu" {
  name               = "${var.name_prefix}-bento-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.bento.service_namespace
  resource_id        = aws_appautoscaling_target.bento.resource_id
  scalable_dimension = aws_appautoscaling_target.bento.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.bento_cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
