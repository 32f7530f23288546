variable "name_prefix" {
  description = "Prefix of every name, e.g. mlops-assets-prod."
  type        = string
}

variable "account_id" {
  description = "AWS account id (scopes the flow-log role's trust)."
  type        = string
}

variable "region" {
  description = "Region, for the S3 gateway endpoint's service name."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC; subnets are /20 slices of a /16."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones to choose from, in order."
  type        = list(string)
}

variable "az_count" {
  description = "How many availability zones to span (2 or more: RDS Multi-AZ and the ALB need two)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be between 2 and 4."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper, but an AZ outage cuts private subnets off)."
  type        = bool
  default     = false
}

variable "logs_kms_key_arn" {
  description = "KMS key encrypting the flow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days flow logs are kept."
  type        = number
  default     = 365
}
