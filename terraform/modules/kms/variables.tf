variable "name_prefix" {
  description = "Prefix of every name, e.g. mlops-assets-prod."
  type        = string
}

variable "account_id" {
  description = "AWS account id that owns the keys."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
}

variable "region" {
  description = "Region of the keys and of the log groups they encrypt."
  type        = string
}

variable "deletion_window_in_days" {
  description = "Days a scheduled key deletion can still be cancelled."
  type        = number
  default     = 30
}
