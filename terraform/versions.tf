# Versions this configuration is written against. Run `terraform init` once with network access and commit
# the .terraform.lock.hcl it writes, so every machine and CI plan with the same provider build.
terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}
