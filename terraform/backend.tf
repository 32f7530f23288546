# Remote state in S3 with native locking. The bucket is created once per account, outside this
# configuration (chicken and egg); pass its settings at init time so no account detail lives here:
#   terraform init -backend-config=backend.hcl   (see README.md, "Deploy")
# State holds no database password: RDS generates it and keeps it in Secrets Manager.
terraform {
  backend "s3" {}
}
