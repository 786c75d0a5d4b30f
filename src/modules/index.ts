// Every module the server can load, in load order. Adding a XEP is one file and one line here.
import type { ModuleDefinition } from '../core/module-definition.js';
import disco from './disco.js';
import roster from './roster.js';
import presence from './presence.js';
import message from './message.js';
import register from './register.js';
import version from './version.js';
import ping from './ping.js';
import time from './time.js';
import amp from './amp.js';
import lastActivity from './last-activity.js';
import pubsub from './pubsub/index.js';
import adhoc from './adhoc/index.js';
import admin from './admin/index.js';
import vhostMan from './vhosts.js';
import anonymous from './anonymous.js';
import forwarding from './forwarding.js';
import scripts from './scripts.js';
import cluster from './cluster.js';
import bans from './bans.js';
import httpApi from './http-api/index.js';
import xmlCurl from './xml-curl/index.js';
import statistics from './statistics.js';
import ami from './ami/index.js';
import adminWeb from './admin-web/index.js';
import sipPresence from './sip-presence/index.js';

export const allModules: ModuleDefinition[] = [disco, roster, presence, message, register, version, ping, time, amp, lastActivity, pubsub,
  adhoc, admin, vhostMan, anonymous, forwarding, scripts, cluster, bans, statistics, ami, adminWeb, sipPresence, httpApi, xmlCurl] as ModuleDefinition[];
