variable "name_prefix" {
  description = "Prefix of every repository name, e.g. mlops-assets-prod."
  type        = string
}

variable "repositories" {
  description = "Repository names under the prefix."
  type        = list(string)
  default     = ["dagster", "code", "bento"]
}

variable "kms_key_arn" {
  description = "KMS key encrypting the images."
  type        = string
}

variable "images_to_keep" {
  description = "Tagged images kept per repository."
  type        = number
  default     = 30
}

variable "force_delete" {
  description = "Let `terraform destroy` delete repositories that still hold images."
  type        = bool
  default     = false
}
