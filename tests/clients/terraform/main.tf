# A user's Terraform configuration for snapferry: the AWS provider, unchanged, with its
# endpoints pointed at snapferry. tests/integration/test_terraform.py applies, re-plans and
# destroys it against a live server.

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

variable "access_key" {
  type    = string
  default = "test"
}

variable "secret_key" {
  type      = string
  default   = "test"
  sensitive = true
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "copy_region" {
  type    = string
  default = "us-west-2"
}

variable "source_snapshot_id" {
  description = "A completed snapshot in var.region (written through the EBS direct APIs)"
  type        = string
}

variable "share_account_id" {
  description = "A second account that may create volumes from the snapshot"
  type        = string
}

variable "amazon_image_prefix" {
  description = "The name prefix of a public image owned by `amazon` in var.region (made by `snapferry images import`)"
  type        = string
}

provider "aws" {
  region     = var.region
  access_key = var.access_key
  secret_key = var.secret_key

  # No skip_* flag is needed: snapferry serves the STS GetCallerIdentity the provider
  # calls to validate the credentials and learn the account id.

  endpoints {
    ec2 = var.endpoint
    kms = var.endpoint
    sts = var.endpoint
    iam = var.endpoint
  }
}

provider "aws" {
  alias      = "copy"
  region     = var.copy_region
  access_key = var.access_key
  secret_key = var.secret_key

  endpoints {
    ec2 = var.endpoint
    kms = var.endpoint
    sts = var.endpoint
    iam = var.endpoint
  }
}

data "aws_caller_identity" "me" {}

data "aws_region" "here" {}

# --- KMS -------------------------------------------------------------------------------

resource "aws_kms_key" "ebs" {
  description             = "snapferry terraform: default EBS key"
  deletion_window_in_days = 7
  enable_key_rotation     = true
  policy = jsonencode({
    Version = "2012-10-17"
    Id      = "ebs-default"
    Statement = [{
      Sid       = "Owner"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.me.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
  tags = {
    Name = "tf-ebs-default"
    team = "storage"
  }
}

resource "aws_kms_alias" "ebs" {
  name          = "alias/tf-ebs-default"
  target_key_id = aws_kms_key.ebs.key_id
}

resource "aws_kms_grant" "share" {
  name              = "tf-share"
  key_id            = aws_kms_key.ebs.key_id
  grantee_principal = "arn:aws:iam::${var.share_account_id}:root"
  operations        = ["Decrypt", "DescribeKey", "CreateGrant"]
}

resource "aws_kms_key" "copy" {
  provider                = aws.copy
  description             = "snapferry terraform: key of the copies"
  deletion_window_in_days = 7
  tags = {
    Name = "tf-copy"
  }
}

resource "aws_kms_alias" "copy" {
  provider      = aws.copy
  name          = "alias/tf-copy"
  target_key_id = aws_kms_key.copy.key_id
}

data "aws_kms_key" "ebs" {
  key_id = aws_kms_alias.ebs.name
}

data "aws_kms_alias" "ebs" {
  name = aws_kms_alias.ebs.name
}

# --- EBS encryption by default -----------------------------------------------------------

resource "aws_ebs_default_kms_key" "this" {
  key_arn = aws_kms_key.ebs.arn
}

resource "aws_ebs_encryption_by_default" "this" {
  enabled = true
}

# --- Volumes and snapshots ---------------------------------------------------------------

resource "aws_ebs_volume" "data" {
  availability_zone = "${var.region}a"
  size              = 1
  type              = "gp3"
  tags = {
    Name = "tf-data"
  }
  # Made after encryption by default is on, so it is encrypted under aws_kms_key.ebs.
  depends_on = [aws_ebs_encryption_by_default.this, aws_ebs_default_kms_key.this]
}

resource "aws_ebs_snapshot" "data" {
  volume_id   = aws_ebs_volume.data.id
  description = "tf snapshot of tf-data"
  tags = {
    Name = "tf-data-snap"
  }
}

resource "aws_snapshot_create_volume_permission" "share" {
  snapshot_id = aws_ebs_snapshot.data.id
  account_id  = var.share_account_id
}

resource "aws_ebs_snapshot_copy" "with_key" {
  provider                    = aws.copy
  source_snapshot_id          = var.source_snapshot_id
  source_region               = var.region
  encrypted                   = true
  kms_key_id                  = aws_kms_key.copy.arn
  completion_duration_minutes = 15
  description                 = "tf copy under tf-copy"
  tags = {
    Name = "tf-copy-with-key"
    set  = "tf-copies"
  }
}

resource "aws_ebs_snapshot_copy" "default_key" {
  provider           = aws.copy
  source_snapshot_id = var.source_snapshot_id
  source_region      = var.region
  encrypted          = true
  description        = "tf copy under the default EBS key"
  tags = {
    Name = "tf-copy-default-key"
    set  = "tf-copies"
  }
  # The provider reads back the key EC2 chose (alias/aws/ebs's ARN, as AWS reports it) into
  # kms_key_id, which it does not mark as computed: without this, every plan would replace
  # the copy, against AWS as here.
  lifecycle {
    ignore_changes = [kms_key_id]
  }
}

data "aws_ebs_snapshot" "copy" {
  provider    = aws.copy
  most_recent = true
  owners      = ["self"]
  filter {
    name   = "tag:Name"
    values = [aws_ebs_snapshot_copy.with_key.tags["Name"]]
  }
}

data "aws_ebs_snapshot_ids" "copies" {
  provider = aws.copy
  owners   = ["self"]
  filter {
    name   = "tag:set"
    values = ["tf-copies"]
  }
  depends_on = [aws_ebs_snapshot_copy.with_key, aws_ebs_snapshot_copy.default_key]
}

# --- Images ------------------------------------------------------------------------------

resource "aws_ami" "from_snapshot" {
  name                = "tf-ami-from-snapshot"
  description         = "tf image of the source snapshot"
  root_device_name    = "/dev/xvda"
  virtualization_type = "hvm"
  architecture        = "x86_64"
  ena_support         = true
  boot_mode           = "uefi"
  imds_support        = "v2.0"
  ebs_block_device {
    device_name = "/dev/xvda"
    snapshot_id = var.source_snapshot_id
    volume_type = "gp3"
  }
  ephemeral_block_device {
    device_name  = "/dev/sdb"
    virtual_name = "ephemeral0"
  }
  tags = {
    Name = "tf-ami"
  }
}

resource "aws_ami_launch_permission" "share" {
  image_id   = aws_ami.from_snapshot.id
  account_id = var.share_account_id
}

resource "aws_ami_copy" "encrypted" {
  provider          = aws.copy
  name              = "tf-ami-copy"
  description       = "tf copy under tf-copy"
  source_ami_id     = aws_ami.from_snapshot.id
  source_ami_region = var.region
  encrypted         = true
  kms_key_id        = aws_kms_key.copy.arn
  tags = {
    Name = "tf-ami-copy"
  }
}

# What users' code does: find Amazon's newest image by name, and copy it to their region.
data "aws_ami" "amazon" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["${var.amazon_image_prefix}*"]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

resource "aws_ami_copy" "amazon" {
  provider          = aws.copy
  name              = "tf-amazon-base"
  source_ami_id     = data.aws_ami.amazon.id
  source_ami_region = var.region
}

data "aws_ami_ids" "mine" {
  owners = ["self"]
  filter {
    name   = "name"
    values = ["tf-ami-*"]
  }
  depends_on = [aws_ami.from_snapshot]
}

# --- What the test checks ----------------------------------------------------------------

output "account_id" {
  value = data.aws_caller_identity.me.account_id
}

output "region" {
  value = data.aws_region.here.name
}

output "volume_id" {
  value = aws_ebs_volume.data.id
}

output "volume_kms_key_id" {
  value = aws_ebs_volume.data.kms_key_id
}

output "snapshot_id" {
  value = aws_ebs_snapshot.data.id
}

output "ebs_key_arn" {
  value = aws_kms_key.ebs.arn
}

output "copy_key_arn" {
  value = aws_kms_key.copy.arn
}

output "copy_with_key_id" {
  value = aws_ebs_snapshot_copy.with_key.id
}

output "copy_default_key_id" {
  value = aws_ebs_snapshot_copy.default_key.id
}

output "data_copy_snapshot_id" {
  value = data.aws_ebs_snapshot.copy.id
}

output "copy_ids" {
  value = data.aws_ebs_snapshot_ids.copies.ids
}

output "data_kms_key_arn" {
  value = data.aws_kms_key.ebs.arn
}

output "data_kms_alias_target" {
  value = data.aws_kms_alias.ebs.target_key_arn
}

output "grant_id" {
  value = aws_kms_grant.share.grant_id
}

output "ami_id" {
  value = aws_ami.from_snapshot.id
}

output "ami_copy_id" {
  value = aws_ami_copy.encrypted.id
}

output "ami_copy_snapshot_id" {
  value = one(aws_ami_copy.encrypted.ebs_block_device[*].snapshot_id)
}

output "amazon_ami_id" {
  value = data.aws_ami.amazon.id
}

output "amazon_copy_id" {
  value = aws_ami_copy.amazon.id
}

output "ami_ids" {
  value = data.aws_ami_ids.mine.ids
}
