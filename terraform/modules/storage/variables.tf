variable "name_prefix" {
  description = "Prefix of every name, e.g. mlops-assets-prod. Bucket names add the purpose and the account id."
  type        = string
}

variable "account_id" {
  description = "AWS account id: makes bucket names globally unique and scopes the log-delivery grants."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts every data bucket."
  type        = string
}

variable "s3_prefix" {
  description = "Key prefix of the landing zone and archive inside the landing bucket (MLOPS_S3_PREFIX), '' or ending in '/'."
  type        = string
  default     = ""

  validation {
    condition     = var.s3_prefix == "" || endswith(var.s3_prefix, "/")
    error_message = "s3_prefix must be empty or end with '/'."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted object version is kept before it expires."
  type        = number
  default     = 90
}

variable "compute_log_expiration_days" {
  description = "Days Dagster compute logs (step stdout/stderr) are kept."
  type        = number
  default     = 90
}

variable "access_log_expiration_days" {
  description = "Days S3 and ALB access logs are kept."
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets. Keep false outside throwaway environments."
  type        = bool
  default     = false
}
