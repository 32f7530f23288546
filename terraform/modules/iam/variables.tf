variable "name_prefix" {
  description = "Prefix of every role name, e.g. mlops-assets-prod."
  type        = string
}

variable "partition" {
  description = "AWS partition."
  type        = string
}

variable "region" {
  description = "Region of the cluster."
  type        = string
}

variable "account_id" {
  description = "AWS account id."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster the daemon may start run tasks on."
  type        = string
}

variable "run_task_definition_prefix" {
  description = "Family prefix of the task definitions the EcsRunLauncher registers (dagster.yaml task_definition_prefix)."
  type        = string
}

variable "ecr_repository_arns" {
  description = "Repository ARN per image: dagster, code, bento."
  type        = map(string)
}

variable "log_group_arns" {
  description = "Log group ARN per service: webserver, daemon, code, runs, bento."
  type        = map(string)
}

variable "bucket_arns" {
  description = "Bucket ARN per purpose: landing, lake, mlflow, dagster."
  type        = map(string)
}

variable "compute_log_prefix" {
  description = "Key prefix of the compute logs in the dagster bucket (dagster.yaml compute_logs prefix)."
  type        = string
}

variable "s3_kms_key_arn" {
  description = "KMS key of the data buckets."
  type        = string
}

variable "database_secret_arn" {
  description = "Secret holding the database credentials."
  type        = string
}

variable "secrets_kms_key_arn" {
  description = "KMS key of that secret."
  type        = string
}
