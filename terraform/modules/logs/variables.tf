variable "name_prefix" {
  description = "Prefix of every name, e.g. mlops-assets-prod. Groups are /<prefix>/ecs/<name>."
  type        = string
}

variable "names" {
  description = "One log group per name."
  type        = list(string)
  default     = ["webserver", "daemon", "code", "runs", "bento", "exec"]
}

variable "kms_key_arn" {
  description = "KMS key encrypting the log groups (its policy must admit the CloudWatch Logs service)."
  type        = string
}

variable "retention_days" {
  description = "Days log events are kept."
  type        = number
  default     = 365
}
