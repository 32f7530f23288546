variable "name_prefix" {
  description = "Prefix of every name (load balancer and target group names are limited to 32 characters)."
  type        = string

  validation {
    condition     = length(var.name_prefix) <= 24
    error_message = "name_prefix must be at most 24 characters: ALB and target group names add '-dagster' and are capped at 32."
  }
}

variable "vpc_id" {
  description = "VPC of the load balancers."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets (internet-facing prediction API)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets (internal load balancers)."
  type        = list(string)
}

variable "access_logs_bucket" {
  description = "Bucket receiving ALB access logs under alb/."
  type        = string
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listeners (TLS 1.2 and 1.3 only)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "deletion_protection" {
  description = "Refuse to delete the load balancers."
  type        = bool
  default     = true
}

variable "bento_internal" {
  description = "Make the prediction API internal instead of internet-facing."
  type        = bool
  default     = false
}

variable "bento_allowed_cidrs" {
  description = "Client ranges allowed to reach the prediction API on 443."
  type        = list(string)
}

variable "bento_certificate_arn" {
  description = "ACM certificate of the prediction API's host name."
  type        = string
}

variable "bento_port" {
  description = "Port the BentoML container listens on."
  type        = number
  default     = 3000
}

variable "bento_rate_limit_per_5_minutes" {
  description = "Requests one client IP may send in any 5 minutes before WAF blocks it."
  type        = number
  default     = 20000
}

variable "dagster_allowed_cidrs" {
  description = "Operator networks allowed to reach the Dagster UI on 443 (VPC, VPN, peered ranges)."
  type        = list(string)
}

variable "dagster_certificate_arn" {
  description = "ACM certificate of the Dagster UI's host name."
  type        = string
}

variable "dagster_port" {
  description = "Port the Dagster webserver listens on."
  type        = number
  default     = 3000
}

variable "logs_kms_key_arn" {
  description = "KMS key of the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days WAF logs are kept."
  type        = number
  default     = 365
}
