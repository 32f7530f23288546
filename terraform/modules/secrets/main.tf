# Secrets Manager: how the database credentials reach the containers, and when they rotate.
#
# RDS creates and owns the master-credential secret (see the database module: manage_master_user_password),
# so the password never passes through terraform. This module sets that secret's rotation schedule
# (managed rotation: no Lambda to run or patch) and publishes the ECS `secrets` entries that map its JSON
# keys onto the environment-variable contract, so no module spells a secret ARN by hand.
#
# Rotation changes the password in the database at once. Tasks read the secret when they start, so every
# new run task gets the new password; the three long-running Dagster services must be redeployed after a
# rotation (README.md, "Rotate secrets"). That is why the schedule is a cron in a quiet window, not a rate.
resource "aws_secretsmanager_secret_rotation" "database" {
  #checkov:skip=CKV_AWS_304:False positive: checkov leaves var.rotation_schedule unresolved when scanning the whole tree (this module alone passes). The variable's validation enforces rotation at least every 90 days.
  secret_id = var.database_secret_arn

  rotation_rules {
    schedule_expression = var.rotation_schedule
    duration            = var.rotation_window
  }

  # Apply only sets the schedule; rotating right away would break the running services mid-apply.
  rotate_immediately = false
}

locals {
  # ECS `secrets` entries: name is the variable the container sees, valueFrom selects one JSON key.
  database_env = [
    { name = "MLOPS_PG_USER", valueFrom = "${var.database_secret_arn}:username::" },
    { name = "MLOPS_PG_PASSWORD", valueFrom = "${var.database_secret_arn}:password::" },
    # libpq reads PGPASSWORD, so MLFLOW_TRACKING_URI carries no password (postgresql://user@host/mlflow).
    { name = "PGPASSWORD", valueFrom = "${var.database_secret_arn}:password::" },
  ]
}
