# CloudWatch log groups of the containers, KMS-encrypted, with a retention. A module of their own because
# both the IAM roles (which may write where) and the ECS task definitions (which write where) depend on
# them. Streams inside a group are <service>/<container>/<task id>; a run's stream is named after its task.
#
#   webserver  dagster-webserver          daemon  dagster-daemon (sensors, schedules, backfills, queue)
#   code       the code location's gRPC server (definitions load, sensor and schedule evaluation)
#   runs       every run task the EcsRunLauncher starts (one task per run: the step logs)
#   bento      the BentoML prediction service
#   exec       ECS Exec sessions (audit of interactive commands)
resource "aws_cloudwatch_log_group" "this" {
  for_each = toset(var.names)

  name              = "/${var.name_prefix}/ecs/${each.key}"
  retention_in_days = var.retention_days
  kms_key_id        = var.kms_key_arn
}
