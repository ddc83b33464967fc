#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: alert
short_description: Send fleet alerts by email, Slack, SMS and webhook, with cooldowns kept across runs
version_added: 0.1.0
description:
  - Evaluates alert rules over the health results of every host of the play (as returned by
    M(bim.wall_system.health_check)) and sends one notification per firing rule, listing every
    affected host, through the rule's channels.
  - Runs on the controller (an action plugin); it never connects to the managed hosts. Call it once per
    run, for example with C(run_once=true).
  - Cooldowns and an alert history are kept in a JSON state file on the controller. The file is replaced
    atomically and a lock held for the whole run makes two overlapping runs safe - the second waits and
    then honours the cooldowns the first one started.
  - Inside a rule's cooldown nothing is sent and the suppression is recorded in the history. The cooldown
    starts only when at least one channel delivered, so an undelivered alert is retried on the next run.
  - A channel that fails is reported (in RV(channel_errors) and as a warning) and the other channels still
    deliver. A channel named by a rule but without configuration is skipped and reported as C(not configured).
  - Secrets (SMTP password, Slack webhook URL, Twilio token, webhook URL and headers) never appear in the
    result, the state file or any message.
author:
  - BIM Wall System operations team (@bim-wall-system)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
options:
  rules:
    description:
      - The alert rules. Each rule is a dict with C(name), C(severity) (C(info), C(warning) or C(critical),
        default C(warning)), C(channels) (a list of C(email), C(slack), C(sms), C(webhook)), C(cooldown)
        (seconds, or a number with C(s), C(m), C(h), C(d) such as C(5m); default 0), an optional C(description),
        and exactly one of C(condition) or C(expression).
      - C(condition) is a dict with C(metric), C(comparison) (one of C(>), C(>=), C(<), C(<=), C(==), C(!=),
        default C(>)), C(threshold), and optionally C(check), the name of the health check whose metrics hold
        the metric. With C(check), the metric names C(status), C(message) and C(duration_ms) name the check's
        own fields. Without it, a top-level field of the result (such as C(overall_status)) or the first check
        whose metrics hold the metric is used. A host without the metric does not fire the rule.
      - C(expression) is a Jinja2 expression, without braces, evaluated in a sandbox for each host. Its
        variables are the fields of the host's health result (C(overall_status), C(checks), C(alerts), ...),
        C(host), C(check) (check name to check entry) and C(metrics) (check name to metrics dict). Example
        V(check.database.status == 'error').
      - An optional C(promql) key is ignored here; role C(bim.wall_system.monitoring) uses it as the rule's
        Prometheus expression where C(expression) cannot be translated.
    type: list
    elements: dict
    required: true
  results:
    description:
      - The health results to evaluate, host name to health result.
      - When omitted, the result is read from the host variable named by O(result_var) of each host in
        O(hosts).
    type: dict
  result_var:
    description:
      - The host variable that holds each host's health result when O(results) is omitted. The default is the
        variable role C(bim.wall_system.health_check) registers.
    type: str
    default: __bim_health_result
  hosts:
    description:
      - Hosts whose results are read when O(results) is omitted. Default is every host of the play
        (C(ansible_play_hosts_all)); hosts without a result are listed in RV(hosts_without_results).
    type: list
    elements: str
  channels:
    description:
      - Channel configuration. A channel missing its required settings counts as not configured.
    type: dict
    default: {}
    suboptions:
      email:
        description: Email over SMTP. Required for the channel to be configured - O(channels.email.host) and O(channels.email.to).
        type: dict
        suboptions:
          host:
            description: SMTP server.
            type: str
          port:
            description: SMTP port. Default 587 with C(starttls), 465 with C(ssl), 25 with C(none).
            type: int
          security:
            description: C(starttls) upgrades a plain connection, C(ssl) connects with TLS, C(none) sends in clear.
            type: str
            default: starttls
            choices: [starttls, ssl, none]
          username:
            description: SMTP user; when set, the client logs in.
            type: str
          password:
            description: SMTP password.
            type: str
          sender:
            description: The From address.
            type: str
            default: bim-alerts@localhost
            aliases: [from]
          to:
            description: Recipient addresses.
            type: list
            elements: str
            default: []
          subject_prefix:
            description: Text put before every subject.
            type: str
            default: ""
          timeout:
            description: Seconds to wait for the server.
            type: int
            default: 10
          validate_certs:
            description: Verify the server's TLS certificate.
            type: bool
            default: true
      slack:
        description: Slack incoming webhook. Required - O(channels.slack.webhook_url).
        type: dict
        suboptions:
          webhook_url:
            description: The incoming webhook URL (a secret).
            type: str
          channel:
            description: Channel override, such as C(#bim-alerts).
            type: str
          username:
            description: Name the message is posted as.
            type: str
          timeout:
            description: Seconds to wait for the endpoint.
            type: int
            default: 10
          validate_certs:
            description: Verify the endpoint's TLS certificate.
            type: bool
            default: true
      sms:
        description:
          - SMS through Twilio's Messages REST API, one request per recipient.
          - Required - O(channels.sms.account_sid), O(channels.sms.auth_token), O(channels.sms.from_number),
            O(channels.sms.to_numbers).
        type: dict
        suboptions:
          account_sid:
            description: Twilio account SID.
            type: str
          auth_token:
            description: Twilio auth token (a secret).
            type: str
          from_number:
            description: Sending number in E.164 form.
            type: str
          to_numbers:
            description: Recipient numbers in E.164 form.
            type: list
            elements: str
            default: []
          api_base:
            description: Base URL of the API (change it for a proxy or a test receiver).
            type: str
            default: https://api.twilio.com
          timeout:
            description: Seconds to wait for the API.
            type: int
            default: 10
          validate_certs:
            description: Verify the API's TLS certificate.
            type: bool
            default: true
      webhook:
        description: Generic webhook that receives the notification as a JSON document. Required - O(channels.webhook.url).
        type: dict
        suboptions:
          url:
            description: Endpoint URL (a secret, as it often embeds a token).
            type: str
          method:
            description: HTTP method.
            type: str
            default: POST
            choices: [POST, PUT]
          headers:
            description: Extra request headers, such as an C(Authorization) header (secret).
            type: dict
            default: {}
          timeout:
            description: Seconds to wait for the endpoint.
            type: int
            default: 10
          validate_certs:
            description: Verify the endpoint's TLS certificate.
            type: bool
            default: true
  state_file:
    description:
      - The state file on the controller (cooldowns and history). Created 0600 with its folder when missing.
      - A relative path is relative to the current directory of the controller.
    type: path
    default: bim-reports/alert-state.json
  send_resolved:
    description: Send a C(resolved) notification through the rule's channels when a rule that fired stops firing.
    type: bool
    default: false
  history_limit:
    description: Number of history entries kept in the state file.
    type: int
    default: 500
  lock_timeout:
    description: Seconds to wait for another run holding the state lock before failing.
    type: int
    default: 60
  fail_on_channel_error:
    description: Fail the task when a configured channel fails (by default a warning is issued).
    type: bool
    default: false
  stats:
    description:
      - Also hand the outcome (the rules firing, notified, suppressed and resolved, the channel errors)
        to AWX / ansible-runner as the custom stat of this name, as M(ansible.builtin.set_stats) would (aggregated, not per host), so that a play needs no
        separate C(set_stats) task. Unset hands nothing over.
    type: str
attributes:
  check_mode:
    support: full
    details: In check mode the rules are evaluated and the notifications that would be sent are returned; nothing is sent or written.
  diff_mode:
    support: none
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    support: full
    platforms: all
notes:
  - Role C(bim.wall_system.alerting) wires this action after the health check with the seed's rules.
seealso:
  - module: bim.wall_system.health_check
  - module: bim.wall_system.fleet_report
"""

EXAMPLES = r"""
- name: Alert on the fleet's health results
  bim.wall_system.alert:
    result_var: __bim_health_result  # registered by role bim.wall_system.health_check
    rules:
      - name: High Memory Usage
        condition: {check: memory, metric: heap_used_percent, comparison: ">", threshold: 0.9}
        severity: critical
        channels: [email, slack, sms]
        cooldown: 5m
      - name: Database Connection Failure
        expression: "check.database is defined and check.database.status == 'error'"
        severity: critical
        channels: [email, slack, sms]
        cooldown: 1m
    channels:
      email:
        host: smtp.example.com
        port: 587
        security: starttls
        username: alerts
        password: "{{ vault_smtp_password }}"
        sender: bim-alerts@example.com
        to: [ops@example.com]
      slack:
        webhook_url: "{{ vault_slack_webhook_url }}"
        channel: "#bim-alerts"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
notifications:
  description: One entry per firing rule outside its cooldown, with the affected hosts and per-channel outcome.
  returned: always
  type: list
  elements: dict
  sample:
    - rule: High Memory Usage
      severity: critical
      status: firing
      hosts: [pg1, lite1]
      subject: "[BIM CRITICAL] High Memory Usage: 2 hosts (pg1, lite1)"
      affected: [{host: pg1, value: 0.93, threshold: 0.9, status: degraded, message: "application heap 93% used"}]
      channels: {email: {status: sent, detail: sent to 1 recipient(s)}, sms: {status: not configured, detail: ""}}
suppressed:
  description: Firing rules not notified because of their cooldown (also recorded in the history).
  returned: always
  type: list
  elements: dict
  sample: [{rule: High Memory Usage, severity: critical, hosts: [pg1], cooldown_remaining_s: 212.5}]
resolved:
  description: Rules that fired on the previous run and no longer fire.
  returned: always
  type: list
  elements: dict
  sample: [{rule: Slow Performance, severity: warning, status: resolved, hosts: [pg2]}]
firing:
  description: Every rule that fires in this run, notified or suppressed.
  returned: always
  type: list
  elements: dict
  sample: [{rule: High Memory Usage, severity: critical, hosts: [pg1]}]
quiet:
  description: Names of the rules that do not fire.
  returned: always
  type: list
  elements: str
  sample: [Slow Performance]
channel_errors:
  description: Channels that failed, per rule, with a message free of secrets.
  returned: always
  type: list
  elements: dict
  sample: [{rule: High Memory Usage, channel: slack, error: "slack: cannot reach the endpoint: Connection refused"}]
rule_errors:
  description: Hosts on which a rule expression could not be evaluated.
  returned: always
  type: list
  elements: dict
  sample: [{rule: Custom, host: pg1, error: "TypeError: '>' not supported"}]
hosts_evaluated:
  description: Hosts whose health result was evaluated.
  returned: always
  type: list
  elements: str
  sample: [pg1, pg2, lite1]
hosts_without_results:
  description: Hosts of the play without a health result (unreachable or failed before the check).
  returned: always
  type: list
  elements: str
  sample: [pg2]
state_file:
  description: Absolute path of the state file.
  returned: always
  type: str
  sample: /home/ops/bim-reports/alert-state.json
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bim.wall_system.plugins.module_utils.alerting.spec import alert_argument_spec


def main():
    module = AnsibleModule(argument_spec=alert_argument_spec(), supports_check_mode=True)
    module.fail_json(msg="bim.wall_system.alert runs on the controller through its action plugin; "
                         "it cannot be executed as a module on a managed host")


if __name__ == "__main__":
    main()
