// The mapping file in perl-bosh's CSV layout (seed 003), one phone per line:
//
//   SIP URI, XMPP username, XMPP password, RID [, SID [, presenceId]]
//
// e.g. `0123456789@domain.example.com,username,password,123456`. SID and presenceId exist only
// once a BOSH session was established (external mode); RID defaults to 123456 in the seed.
// Lines are read one by one (a mapping never spans lines), so a line that is not valid CSV or
// not a valid mapping is reported with its number and skipped while the rest loads; `#` starts
// a comment line. The CSV quoting rules are csv-parse's.
import { parse } from 'csv-parse/sync';

export interface PhoneMapping {
  /** The SIP URI normalised (see normaliseSipUri): the phone's identity. */
  uri: string;
  /** Line of the file it was read from. */
  line: number;
  /** The XMPP username as written: `user` or `user@domain`. */
  username: string;
  password: string;
  rid: number;
  sid?: string;
  presenceId?: string;
}

export interface MappingProblem {
  line: number;
  message: string;
}

export interface Mapping {
  phones: Map<string, PhoneMapping>;
  problems: MappingProblem[];
}

/** The seed's default first RID. */
export const DEFAULT_RID = 123456;

/**
 * The comparable form of a SIP URI: no display name brackets, scheme, parameters or headers, and
 * the host in lower case (the user part of a SIP URI is case-sensitive). Undefined when it does
 * not name a user at a host.
 */
export function normaliseSipUri(raw: string): string | undefined {
  let s = raw.trim();
  const open = s.indexOf('<');
  if (open >= 0) s = s.slice(open + 1, s.indexOf('>', open) >= 0 ? s.indexOf('>', open) : undefined);
  s = s.replace(/^sips?:/i, '');
  s = s.split(/[;?]/, 1)[0]!;
  // COMPAT: the seed writes its example URI as `0123456789@@domain.example.com` (a Perl
  // string escape); a doubled @ stands for one.
  s = s.replace('@@', '@');
  const at = s.lastIndexOf('@');
  if (at <= 0 || at === s.length - 1) return undefined;
  const user = s.slice(0, at);
  const host = s.slice(at + 1).toLowerCase();
  if (/[\s@<>"]/.test(user) || !/^[a-z0-9.\-[\]:]+$/.test(host)) return undefined;
  return `${user}@${host}`;
}

function fields(text: string): string[] {
  const rows = parse(text, { trim: true, relax_column_count: true }) as string[][];
  return rows[0] ?? [];
}

/** Reads the mapping file's text. The first line naming a SIP URI wins over later ones. */
export function parseMapping(text: string): Mapping {
  const phones = new Map<string, PhoneMapping>();
  const problems: MappingProblem[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((source, i) => {
    const line = i + 1;
    if (source.trim() === '' || source.trimStart().startsWith('#')) return;
    const problem = (message: string) => { problems.push({ line, message }); };
    let f: string[];
    try {
      f = fields(source);
    } catch (e) {
      return problem(`not valid CSV: ${(e as Error).message.replace(/ at line \d+.*$/, '')}`);
    }
    if (f.length < 4 || f.length > 6) return problem(`expected 4 to 6 fields (SIP URI, XMPP username, XMPP password, RID [, SID [, presenceId]]), found ${f.length}`);
    const [rawUri, username, password, ridText, sid, presenceId] = f as [string, string, string, string, string?, string?];
    const uri = normaliseSipUri(rawUri);
    if (!uri) return problem(`"${rawUri}" is not a SIP URI of a user (user@host)`);
    if (username === '') return problem('the XMPP username is empty');
    const rid = ridText === '' ? DEFAULT_RID : Number(ridText);
    if (!Number.isSafeInteger(rid) || rid < 0) return problem(`RID "${ridText}" is not a whole number`);
    const earlier = phones.get(uri);
    if (earlier) return problem(`${uri} is already mapped on line ${earlier.line}`);
    const phone: PhoneMapping = { uri, line, username, password, rid };
    if (sid) phone.sid = sid;
    if (presenceId) phone.presenceId = presenceId;
    phones.set(uri, phone);
  });
  return { phones, problems };
}
