# IAM set up with Terraform, then used: a user with an access key and a managed policy that
# lets it assume a role; the role (trust policy naming the user) may copy snapshots; a second
# provider block signs in as the user, assumes the role and copies a snapshot.
# tests/integration/test_terraform_iam.py applies, re-plans and destroys it against snapferry.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

variable "endpoint" {
  description = "snapferry's URL, e.g. http://127.0.0.1:4747"
  type        = string
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "source_snapshot_id" {
  description = "A completed snapshot in var.region that the role will copy"
  type        = string
}

provider "aws" {
  region     = var.region
  access_key = "test"
  secret_key = "test"

  endpoints {
    ec2 = var.endpoint
    iam = var.endpoint
    sts = var.endpoint
  }
}

resource "aws_iam_user" "copier" {
  name = "tf-copier"
  path = "/automation/"
  tags = { team = "dr" }
}

resource "aws_iam_access_key" "copier" {
  user = aws_iam_user.copier.name
}

resource "aws_iam_role" "copier" {
  name                 = "tf-snapshot-copier"
  description          = "Copies snapshots for disaster recovery"
  max_session_duration = 7200
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = aws_iam_user.copier.arn }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "copy" {
  name = "copy-snapshots"
  role = aws_iam_role.copier.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["ec2:CopySnapshot", "ec2:DescribeSnapshots", "ec2:DeleteSnapshot", "ec2:CreateTags"]
      Resource = "*"
    }]
  })
}

resource "aws_iam_policy" "assume" {
  name        = "tf-assume-copier"
  description = "May assume the snapshot copier role"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "sts:AssumeRole"
      Resource = aws_iam_role.copier.arn
    }]
  })
}

resource "aws_iam_user_policy_attachment" "assume" {
  user       = aws_iam_user.copier.name
  policy_arn = aws_iam_policy.assume.arn
}

# Signs in as the user, then acts as the role.
provider "aws" {
  alias      = "copier"
  region     = var.region
  access_key = aws_iam_access_key.copier.id
  secret_key = aws_iam_access_key.copier.secret

  assume_role {
    role_arn     = aws_iam_role.copier.arn
    session_name = "terraform-copy"
  }

  endpoints {
    ec2 = var.endpoint
    iam = var.endpoint
    sts = var.endpoint
  }
}

resource "aws_ebs_snapshot_copy" "copy" {
  provider           = aws.copier
  source_snapshot_id = var.source_snapshot_id
  source_region      = var.region
  description        = "copied by the role"
  tags               = { copied_by = "tf-snapshot-copier" }

  depends_on = [aws_iam_role_policy.copy, aws_iam_user_policy_attachment.assume]
}

output "user_arn" {
  value = aws_iam_user.copier.arn
}

output "access_key_id" {
  value = aws_iam_access_key.copier.id
}

output "role_arn" {
  value = aws_iam_role.copier.arn
}

output "policy_arn" {
  value = aws_iam_policy.assume.arn
}

output "copy_id" {
  value = aws_ebs_snapshot_copy.copy.id
}
