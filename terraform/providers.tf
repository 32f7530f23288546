# Credentials come from the environment (AWS_PROFILE, SSO, or the CI's OIDC role), never from this repo.
provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# The zones are named, not discovered: a zone AWS adds later must not silently grow the network.
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = var.availability_zones
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == length(var.availability_zones)
      error_message = "Every zone in availability_zones must exist and be available in aws_region."
    }
  }
}
