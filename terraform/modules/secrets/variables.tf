variable "database_secret_arn" {
  description = "ARN of the RDS-managed master-credential secret (JSON keys username, password)."
  type        = string
}

variable "rotation_schedule" {
  description = "When RDS rotates the database password (Secrets Manager schedule expression, UTC). Default: 04:00 UTC on the 1st of each month."
  type        = string
  default     = "cron(0 4 1 * ? *)"

  # At least every 90 days: a cron that fires every month, or rate(N days) with N <= 90.
  validation {
    condition = (
      can(regex("^cron\\(\\S+ \\S+ \\S+ \\* \\S+ \\S+\\)$", var.rotation_schedule)) ||
      try(tonumber(regex("^rate\\(([0-9]+) days?\\)$", var.rotation_schedule)[0]) <= 90, false)
    )
    error_message = "rotation_schedule must rotate at least every 90 days: a monthly cron(...) (month field '*') or rate(N days) with N <= 90."
  }
}

variable "rotation_window" {
  description = "How long after the scheduled time rotation may start."
  type        = string
  default     = "2h"
}
