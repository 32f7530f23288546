# Load balancers. Two, because they face different people:
#   bento    the prediction API: internet-facing by default, HTTPS only, behind a WAF with AWS managed
#            rules (common, known bad inputs incl. Log4j, anonymizers) and a per-client rate limit;
#            targets health-checked on BentoML's /readyz.
#   dagster  the Dagster UI: internal (reachable from the VPC, a VPN or a peered network only), HTTPS only.
#            The webserver has no login of its own, so it is never internet-facing here.
# Both log every request to the access-log bucket. Target security-group rules live in the ecs module,
# which owns the task security groups.

# ---------------------------------------------------------------------------------------------------
# Prediction API
# ---------------------------------------------------------------------------------------------------
resource "aws_security_group" "bento" {
  name        = "${var.name_prefix}-bento-alb"
  description = "Prediction API load balancer: HTTPS in from the allowed clients"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name_prefix}-bento-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "bento_https" {
  for_each = toset(var.bento_allowed_cidrs)

  security_group_id = aws_security_group.bento.id
  description       = "HTTPS from an allowed client range"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_lb" "bento" {
  name                       = "${var.name_prefix}-bento"
  internal                   = var.bento_internal
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.bento.id]
  subnets                    = var.bento_internal ? var.private_subnet_ids : var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 60

  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = "alb/bento"
    enabled = true
  }
}

resource "aws_lb_target_group" "bento" {
  name        = "${var.name_prefix}-bento"
  port        = var.bento_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  deregistration_delay = 30

  # BentoML answers /readyz with 200 only once the service has loaded its model and its runners are up,
  # so a task starts taking traffic when it can actually predict. /livez would pass earlier.
  health_check {
    path                = "/readyz"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "bento_https" {
  load_balancer_arn = aws_lb.bento.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.bento_certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.bento.arn
  }
}

# WAF on the prediction API: AWS managed common and known-bad-input rules, plus a rate limit per client IP.
resource "aws_wafv2_web_acl" "bento" {
  name        = "${var.name_prefix}-bento"
  description = "Prediction API: managed rules and a per-IP rate limit"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "aws-common"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"

        # Batch prediction bodies ({"records": [...]}) are routinely larger than this rule's 8 KB limit.
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-bento-aws-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 20

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-bento-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-anonymous-ip"
    priority = 25

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesAnonymousIpList"
        vendor_name = "AWS"

        # Callers of a prediction API are often other services hosted in a cloud: count those, block only
        # anonymizers (Tor, VPN and proxy exits).
        rule_action_override {
          name = "HostingProviderIPList"
          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-bento-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 30

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.bento_rate_limit_per_5_minutes
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-bento-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name_prefix}-bento"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "bento" {
  resource_arn = aws_lb.bento.arn
  web_acl_arn  = aws_wafv2_web_acl.bento.arn
}

# WAF log groups must be named aws-waf-logs-*.
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${var.name_prefix}-bento"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

resource "aws_wafv2_web_acl_logging_configuration" "bento" {
  resource_arn            = aws_wafv2_web_acl.bento.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
}

# ---------------------------------------------------------------------------------------------------
# Dagster UI (internal)
# ---------------------------------------------------------------------------------------------------
resource "aws_security_group" "dagster" {
  name        = "${var.name_prefix}-dagster-alb"
  description = "Dagster UI load balancer (internal): HTTPS in from the operator networks"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name_prefix}-dagster-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "dagster_https" {
  for_each = toset(var.dagster_allowed_cidrs)

  security_group_id = aws_security_group.dagster.id
  description       = "HTTPS from an operator network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_lb" "dagster" {
  name                       = "${var.name_prefix}-dagster"
  internal                   = true
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.dagster.id]
  subnets                    = var.private_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  # The UI streams run events over long-lived connections.
  idle_timeout = 300

  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = "alb/dagster"
    enabled = true
  }
}

resource "aws_lb_target_group" "dagster" {
  name        = "${var.name_prefix}-dagster"
  port        = var.dagster_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  deregistration_delay = 30

  health_check {
    path                = "/server_info"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 30
    timeout             = 10
    healthy_threshold   = 2
    unhealthy_threshold = 5
  }
}

resource "aws_lb_listener" "dagster_https" {
  load_balancer_arn = aws_lb.dagster.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.dagster_certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.dagster.arn
  }
}
