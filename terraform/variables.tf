# ---------------------------------------------------------------------------------------------------
# Required: no defaults, set them in a *.tfvars file (see terraform.tfvars.example)
# ---------------------------------------------------------------------------------------------------
variable "dagster_image_tag" {
  description = "Tag of the dagster image (webserver, daemon) pushed to ECR, e.g. the git commit."
  type        = string
}

variable "code_image_tag" {
  description = "Tag of the code image (code location and run tasks) pushed to ECR."
  type        = string
}

variable "bento_image_tag" {
  description = "Tag of the BentoML image pushed to ECR."
  type        = string
}

variable "bento_certificate_arn" {
  description = "ACM certificate (same region) for the prediction API's host name."
  type        = string
}

variable "dagster_certificate_arn" {
  description = "ACM certificate (same region) for the Dagster UI's internal host name."
  type        = string
}

# ---------------------------------------------------------------------------------------------------
# Where and what
# ---------------------------------------------------------------------------------------------------
variable "aws_region" {
  description = "Region of the whole deployment."
  type        = string
  default     = "eu-west-1"
}

variable "project" {
  description = "Project part of every name."
  type        = string
  default     = "mlops-assets"
}

variable "environment" {
  description = "Environment part of every name (prod, staging, ...). project-environment must fit in 24 characters."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.environment))
    error_message = "environment must be lowercase letters, digits and dashes (it becomes part of bucket names)."
  }
}

variable "tags" {
  description = "Extra tags on every resource (cost centre, owner, ...)."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------------
variable "vpc_cidr" {
  description = "CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones to span, by name, in aws_region (2 to 4: RDS Multi-AZ and the ALBs need two)."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b"]

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 4
    error_message = "List 2 to 4 availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per AZ (cheaper, less available)."
  type        = bool
  default     = false
}

variable "bento_internal" {
  description = "Keep the prediction API inside the VPC instead of internet-facing."
  type        = bool
  default     = false
}

variable "bento_allowed_cidrs" {
  description = "Client ranges allowed to call the prediction API on 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "bento_rate_limit_per_5_minutes" {
  description = "WAF: requests one client IP may send in any 5 minutes."
  type        = number
  default     = 20000
}

variable "dagster_allowed_cidrs" {
  description = "Operator networks allowed to reach the Dagster UI (VPN, peered ranges). Empty: the VPC CIDR only."
  type        = list(string)
  default     = []
}

variable "alb_deletion_protection" {
  description = "Refuse to delete the load balancers."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------------
variable "s3_prefix" {
  description = "Key prefix of landing zone and archive in the landing bucket (MLOPS_S3_PREFIX): '' or ending in '/'."
  type        = string
  default     = ""
}

variable "noncurrent_version_expiration_days" {
  description = "Days overwritten or deleted object versions are kept."
  type        = number
  default     = 90
}

variable "compute_log_expiration_days" {
  description = "Days Dagster compute logs are kept in S3."
  type        = number
  default     = 90
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps container, flow and WAF logs."
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Let destroy delete non-empty buckets and repositories. Only for throwaway environments."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------------
variable "db_engine_major_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage_gb" {
  description = "Initial database storage (GiB)."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling (GiB)."
  type        = number
  default     = 500
}

variable "db_multi_az" {
  description = "Multi-AZ standby with automatic failover."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups."
  type        = number
  default     = 14
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database."
  type        = bool
  default     = true
}

variable "db_password_rotation_schedule" {
  description = "When RDS rotates the database password (UTC). Redeploy the Dagster services after each rotation."
  type        = string
  default     = "cron(0 4 1 * ? *)"
}

# ---------------------------------------------------------------------------------------------------
# Compute
# ---------------------------------------------------------------------------------------------------
variable "cpu_architecture" {
  description = "X86_64 or ARM64; the images must be built for it."
  type        = string
  default     = "X86_64"
}

variable "task_sizes" {
  description = "Fargate CPU units / memory MiB per long-running service. Run task sizes are in terraform/dagster/dagster.yaml."
  type        = map(object({ cpu = number, memory = number }))
  default = {
    webserver = { cpu = 1024, memory = 2048 }
    daemon    = { cpu = 512, memory = 2048 }
    code      = { cpu = 1024, memory = 4096 }
    bento     = { cpu = 1024, memory = 2048 }
  }
}

variable "max_concurrent_runs" {
  description = "Run tasks the queue lets run at once (a backfill's fan-out width)."
  type        = number
  default     = 10
}

variable "bento_dataset" {
  description = "Dataset whose champion the BentoML image serves (MLOPS_DATASET in the container)."
  type        = string
  default     = "transactions"
}

variable "bento_min_count" {
  description = "Fewest BentoML tasks."
  type        = number
  default     = 2
}

variable "bento_max_count" {
  description = "Most BentoML tasks."
  type        = number
  default     = 10
}

variable "bento_cpu_target_percent" {
  description = "Average CPU the BentoML service is scaled to hold."
  type        = number
  default     = 60
}
