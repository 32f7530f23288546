# Container registries: one repository per image. Tags are immutable (a tag names one build forever, so
# a task definition that says :v42 runs what was tested as :v42), images are scanned on push, encrypted
# with a customer key, and old images expire.
#
#   dagster  Dagster webserver and daemon (terraform/docker/dagster.Dockerfile)
#   code     the code location: gRPC server and every run task (terraform/docker/code.Dockerfile)
#   bento    the BentoML prediction service (`bentoml containerize`)
resource "aws_ecr_repository" "this" {
  for_each = toset(var.repositories)

  name                 = "${var.name_prefix}/${each.key}"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = aws_ecr_repository.this

  repository = each.value.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Untagged layers of superseded builds"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 14
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest tagged images (rollback room)"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.images_to_keep
        }
        action = { type = "expire" }
      },
    ]
  })
}
