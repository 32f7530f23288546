variable "database_secret_arn" {
  description = "ARN of the RDS-managed master-credential secret (JSON keys username, password)."
  type        = string
}

variable "rotation_schedule" {
  description = "When RDS rotates the database password (Secrets Manager schedule expression, UTC). Default: 04:00 on the first Sunday of each month."
  type        = string
  default     = "cron(0 4 ? * SUN#1 *)"
}

variable "rotation_window" {
  description = "How long after the scheduled time rotation may start."
  type        = string
  default     = "2h"
}
