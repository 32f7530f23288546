variable "bucket_name" {
  description = "Globally unique bucket name."
  type        = string
}

variable "purpose" {
  description = "What the bucket holds (a tag)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for default encryption."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket receiving this bucket's server access logs (under s3/<bucket>/)."
  type        = string
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted object version is kept."
  type        = number
}

variable "transitions" {
  description = "Storage-class transitions by age for objects under transition_prefix."
  type        = list(object({ days = number, storage_class = string }))
  default     = []
}

variable "transition_prefix" {
  description = "Key prefix the transitions apply to ('' for the whole bucket)."
  type        = string
  default     = ""
}

variable "expire_current_after_days" {
  description = "Expire current objects after this many days; null keeps them."
  type        = number
  default     = null
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a non-empty bucket."
  type        = bool
  default     = false
}
