// The documents FreeSWITCH's mod_xml_curl expects back: callcenter.conf (mod_callcenter's
// configuration: <settings> and <queues>) and the "not found" result, which makes FreeSWITCH
// try its next binding or its own files (switch_xml_locate).
import { xml, serialize, type Element } from '../../xml/element.js';
import type { QueueRow } from './queues.js';

/** Queue columns and the mod_callcenter queue parameter each one gives (queue_set_config in mod_callcenter.c). */
const PARAMS: readonly [keyof QueueRow, string][] = [
  ['strategy', 'strategy'],
  ['moh_sound', 'moh-sound'],
  ['announce_sound', 'announce-sound'],
  ['announce_frequency', 'announce-frequency'],
  ['record_template', 'record-template'],
  ['time_base_score', 'time-base-score'],
  ['tier_rules_apply', 'tier-rules-apply'],
  ['tier_rule_wait_second', 'tier-rule-wait-second'],
  ['tier_rule_wait_multiply_level', 'tier-rule-wait-multiply-level'],
  ['tier_rule_no_agent_no_wait', 'tier-rule-no-agent-no-wait'],
  ['discard_abandoned_after', 'discard-abandoned-after'],
  ['abandoned_resume_allowed', 'abandoned-resume-allowed'],
  ['max_wait_time', 'max-wait-time'],
  ['max_wait_time_with_no_agent', 'max-wait-time-with-no-agent'],
  ['max_wait_time_with_no_agent_time_reached', 'max-wait-time-with-no-agent-time-reached'],
];

const DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n';

/** Characters XML 1.0 cannot carry even escaped (C0 controls but tab, LF, CR): dropped from database values. */
const NOT_XML = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/g;

function clean(value: string): string {
  return value.replace(NOT_XML, '');
}

function param(name: string, value: string): Element {
  return xml('param', { name, value: clean(value) });
}

function document(section: Element): string {
  return DECLARATION + serialize(xml('document', { type: 'freeswitch/xml' }, section)) + '\n';
}

/** callcenter.conf with the given settings and queues; a column that is NULL leaves its parameter to FreeSWITCH's default. */
export function callcenterConfiguration(settings: Record<string, string>, queues: readonly QueueRow[]): string {
  return document(xml('section', { name: 'configuration' },
    xml('configuration', { name: 'callcenter.conf', description: 'CallCenter' },
      xml('settings', null, Object.entries(settings).map(([name, value]) => param(name, value))),
      xml('queues', null, queues.map((q) => xml('queue', { name: clean(q.name) },
        PARAMS.flatMap(([column, name]) => (q[column] === undefined ? [] : [param(name, q[column]!)]))))))));
}

/** The answer for anything this endpoint does not have (seed 004's shape). */
export function notFound(): string {
  return document(xml('section', { name: 'result' }, xml('result', { status: 'not found' })));
}
