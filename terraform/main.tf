# mlops_assets on AWS: the root module wires one module per concern.
#
#   network   VPC over 2+ AZs, public/private subnets, NAT, S3 endpoint, flow logs
#   kms       customer-managed keys per purpose (s3, rds, secrets, ecr, logs)
#   storage   S3: landing/archive, lake (DuckLake Parquet), MLflow artifacts, Dagster compute logs, access logs
#   database  RDS PostgreSQL: Dagster storage, MLflow tracking, DuckLake catalog
#   secrets   Secrets Manager: the database credentials' rotation and their mapping onto env vars
#   ecr       image repositories: dagster, code, bento
#   logs      CloudWatch log groups of the containers
#   iam       execution and task roles
#   alb       load balancers: prediction API (public, WAF, /readyz) and Dagster UI (internal)
#   ecs       Fargate cluster: Dagster webserver, daemon (EcsRunLauncher), code location, BentoML service
locals {
  name_prefix  = "${var.project}-${var.environment}"
  account_id   = data.aws_caller_identity.current.account_id
  partition    = data.aws_partition.current.partition
  cluster_name = local.name_prefix

  # Must match terraform/dagster/dagster.yaml, which reads them from the environment the ecs module sets.
  run_task_definition_prefix = "${local.name_prefix}-run"
  compute_log_prefix         = "compute-logs"
}

module "network" {
  source = "./modules/network"

  name_prefix        = local.name_prefix
  account_id         = local.account_id
  region             = var.aws_region
  vpc_cidr           = var.vpc_cidr
  availability_zones = sort(data.aws_availability_zones.selected.names)
  az_count           = length(var.availability_zones)
  single_nat_gateway = var.single_nat_gateway
  logs_kms_key_arn   = module.kms.key_arns["logs"]
  log_retention_days = var.log_retention_days
}

module "kms" {
  source = "./modules/kms"

  name_prefix = local.name_prefix
  account_id  = local.account_id
  partition   = local.partition
  region      = var.aws_region
}

module "storage" {
  source = "./modules/storage"

  name_prefix                        = local.name_prefix
  account_id                         = local.account_id
  kms_key_arn                        = module.kms.key_arns["s3"]
  s3_prefix                          = var.s3_prefix
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  compute_log_expiration_days        = var.compute_log_expiration_days
  force_destroy                      = var.force_destroy
}

module "database" {
  source = "./modules/database"

  name_prefix               = local.name_prefix
  partition                 = local.partition
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  kms_key_arn               = module.kms.key_arns["rds"]
  secrets_kms_key_arn       = module.kms.key_arns["secrets"]
  engine_major_version      = var.db_engine_major_version
  instance_class            = var.db_instance_class
  allocated_storage_gb      = var.db_allocated_storage_gb
  max_allocated_storage_gb  = var.db_max_allocated_storage_gb
  multi_az                  = var.db_multi_az
  backup_retention_days     = var.db_backup_retention_days
  deletion_protection       = var.db_deletion_protection
  logs_kms_key_arn          = module.kms.key_arns["logs"]
  log_retention_days        = var.log_retention_days
}

module "secrets" {
  source = "./modules/secrets"

  database_secret_arn = module.database.master_user_secret_arn
  rotation_schedule   = var.db_password_rotation_schedule
}

module "ecr" {
  source = "./modules/ecr"

  name_prefix  = local.name_prefix
  kms_key_arn  = module.kms.key_arns["ecr"]
  force_delete = var.force_destroy
}

module "logs" {
  source = "./modules/logs"

  name_prefix    = local.name_prefix
  kms_key_arn    = module.kms.key_arns["logs"]
  retention_days = var.log_retention_days
}

module "iam" {
  source = "./modules/iam"

  name_prefix                = local.name_prefix
  partition                  = local.partition
  region                     = var.aws_region
  account_id                 = local.account_id
  cluster_name               = local.cluster_name
  run_task_definition_prefix = local.run_task_definition_prefix
  ecr_repository_arns        = module.ecr.repository_arns
  log_group_arns             = module.logs.arns
  bucket_arns                = module.storage.bucket_arns
  compute_log_prefix         = local.compute_log_prefix
  s3_kms_key_arn             = module.kms.key_arns["s3"]
  database_secret_arn        = module.secrets.database_secret_arn
  secrets_kms_key_arn        = module.kms.key_arns["secrets"]
}

module "alb" {
  source = "./modules/alb"

  name_prefix                    = local.name_prefix
  vpc_id                         = module.network.vpc_id
  public_subnet_ids              = module.network.public_subnet_ids
  private_subnet_ids             = module.network.private_subnet_ids
  access_logs_bucket             = module.storage.access_logs_bucket
  deletion_protection            = var.alb_deletion_protection
  bento_internal                 = var.bento_internal
  bento_allowed_cidrs            = var.bento_allowed_cidrs
  bento_certificate_arn          = var.bento_certificate_arn
  bento_rate_limit_per_5_minutes = var.bento_rate_limit_per_5_minutes
  dagster_allowed_cidrs          = length(var.dagster_allowed_cidrs) > 0 ? var.dagster_allowed_cidrs : [var.vpc_cidr]
  dagster_certificate_arn        = var.dagster_certificate_arn
  logs_kms_key_arn               = module.kms.key_arns["logs"]
  log_retention_days             = var.log_retention_days
}

module "ecs" {
  source = "./modules/ecs"

  name_prefix        = local.name_prefix
  region             = var.aws_region
  cluster_name       = local.cluster_name
  vpc_id             = module.network.vpc_id
  private_subnet_ids = module.network.private_subnet_ids
  cpu_architecture   = var.cpu_architecture

  dagster_image = "${module.ecr.repository_urls["dagster"]}:${var.dagster_image_tag}"
  code_image    = "${module.ecr.repository_urls["code"]}:${var.code_image_tag}"
  bento_image   = "${module.ecr.repository_urls["bento"]}:${var.bento_image_tag}"
  task_sizes    = var.task_sizes

  bento_dataset            = var.bento_dataset
  bento_min_count          = var.bento_min_count
  bento_max_count          = var.bento_max_count
  bento_cpu_target_percent = var.bento_cpu_target_percent

  max_concurrent_runs        = var.max_concurrent_runs
  run_task_definition_prefix = local.run_task_definition_prefix

  log_group_names  = module.logs.names
  logs_kms_key_arn = module.kms.key_arns["logs"]

  dagster_execution_role_arn = module.iam.dagster_execution_role_arn
  bento_execution_role_arn   = module.iam.bento_execution_role_arn
  webserver_task_role_arn    = module.iam.webserver_task_role_arn
  daemon_task_role_arn       = module.iam.daemon_task_role_arn
  code_task_role_arn         = module.iam.code_task_role_arn
  run_task_role_arn          = module.iam.run_task_role_arn

  bucket_names       = module.storage.bucket_names
  s3_prefix          = var.s3_prefix
  compute_log_prefix = local.compute_log_prefix

  database_host              = module.database.address
  database_port              = module.database.port
  database_name              = module.database.database_name
  database_username          = module.database.master_username
  database_security_group_id = module.database.security_group_id
  database_secret_arn        = module.secrets.database_secret_arn
  database_secret_env        = module.secrets.database_env

  dagster_target_group_arn      = module.alb.dagster_target_group_arn
  dagster_alb_security_group_id = module.alb.dagster_security_group_id
  bento_target_group_arn        = module.alb.bento_target_group_arn
  bento_alb_security_group_id   = module.alb.bento_security_group_id
}
