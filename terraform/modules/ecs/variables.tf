variable "name_prefix" {
  description = "Prefix of every name, e.g. mlops-assets-prod."
  type        = string
}

variable "region" {
  description = "Region (log driver, AWS_REGION)."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster name."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the tasks."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets the tasks run in."
  type        = list(string)
}

variable "cpu_architecture" {
  description = "CPU architecture of the images (X86_64 or ARM64); build the images for it."
  type        = string
  default     = "X86_64"
}

variable "dagster_image" {
  description = "Image of the Dagster webserver and daemon (ECR URL with an immutable tag)."
  type        = string
}

variable "code_image" {
  description = "Image of the code location and of every run task (ECR URL with an immutable tag)."
  type        = string
}

variable "bento_image" {
  description = "Image built by `bentoml containerize` (ECR URL with an immutable tag)."
  type        = string
}

variable "task_sizes" {
  description = "Fargate CPU units and memory (MiB) per service: webserver, daemon, code, bento."
  type        = map(object({ cpu = number, memory = number }))
}

variable "bento_port" {
  description = "Port the BentoML container listens on."
  type        = number
  default     = 3000
}

variable "bento_dataset" {
  description = "Dataset whose champion the BentoML image serves (MLOPS_DATASET)."
  type        = string
  default     = "transactions"
}

variable "bento_min_count" {
  description = "Fewest BentoML tasks (one per AZ at least, for availability)."
  type        = number
  default     = 2
}

variable "bento_max_count" {
  description = "Most BentoML tasks autoscaling may run."
  type        = number
  default     = 10
}

variable "bento_cpu_target_percent" {
  description = "Average CPU the BentoML service is scaled to hold."
  type        = number
  default     = 60
}

variable "max_concurrent_runs" {
  description = "Runs (ECS tasks) the queue lets run at once; a backfill's partitions wait in the queue beyond it."
  type        = number
}

variable "run_task_definition_prefix" {
  description = "Family prefix of the run task definitions the EcsRunLauncher registers."
  type        = string
}

variable "log_group_names" {
  description = "Log group name per service: webserver, daemon, code, runs, bento, exec."
  type        = map(string)
}

variable "logs_kms_key_arn" {
  description = "KMS key encrypting ECS Exec session logs."
  type        = string
}

variable "dagster_execution_role_arn" {
  description = "Execution role of the Dagster services and run tasks."
  type        = string
}

variable "bento_execution_role_arn" {
  description = "Execution role of the BentoML service."
  type        = string
}

variable "webserver_task_role_arn" {
  description = "Task role of the webserver."
  type        = string
}

variable "daemon_task_role_arn" {
  description = "Task role of the daemon."
  type        = string
}

variable "code_task_role_arn" {
  description = "Task role of the code location."
  type        = string
}

variable "run_task_role_arn" {
  description = "Task role of every run task."
  type        = string
}

variable "bucket_names" {
  description = "Bucket name per purpose: landing, lake, mlflow, dagster."
  type        = map(string)
}

variable "s3_prefix" {
  description = "Key prefix of landing zone and archive in the landing bucket (MLOPS_S3_PREFIX)."
  type        = string
}

variable "lake_prefix" {
  description = "Key prefix of the DuckLake data in the lake bucket, ending in '/'."
  type        = string
  default     = "lake/"
}

variable "compute_log_prefix" {
  description = "Key prefix of compute logs in the dagster bucket."
  type        = string
}

variable "database_host" {
  description = "PostgreSQL host."
  type        = string
}

variable "database_port" {
  description = "PostgreSQL port."
  type        = number
}

variable "database_name" {
  description = "Database of the Dagster storage and the DuckLake catalog (MLOPS_PG_DB)."
  type        = string
}

variable "mlflow_database_name" {
  description = "Database of the MLflow tracking store (separate: MLflow and Dagster both keep an alembic_version table)."
  type        = string
  default     = "mlflow"
}

variable "database_username" {
  description = "Database user (not secret)."
  type        = string
}

variable "database_security_group_id" {
  description = "Security group of the database (egress target)."
  type        = string
}

variable "database_secret_arn" {
  description = "Secret holding the database credentials."
  type        = string
}

variable "database_secret_env" {
  description = "ECS `secrets` entries mapping the secret's keys to environment variables."
  type        = list(object({ name = string, valueFrom = string }))
}

variable "dagster_target_group_arn" {
  description = "Target group of the webserver (internal ALB)."
  type        = string
}

variable "dagster_alb_security_group_id" {
  description = "Security group of the internal ALB."
  type        = string
}

variable "bento_target_group_arn" {
  description = "Target group of the BentoML service (health check /readyz)."
  type        = string
}

variable "bento_alb_security_group_id" {
  description = "Security group of the prediction API ALB."
  type        = string
}
