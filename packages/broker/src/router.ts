import type { QoS, SubscriptionTrie } from "@myqtt/codec";
import type { BrokerMessage } from "./message.js";
import type { Session, Subscription } from "./session.js";

/** What one session gets from one message: the merge of its matching subscriptions. */
interface Merged {
  qos: QoS;
  retain: boolean;
  ids: number[] | null;
}

/** Hands one delivery to a session. */
export type Deliver = (
  session: Session,
  msg: BrokerMessage,
  qos: QoS,
  retain: boolean,
  subscriptionIds: number[] | null,
  /** The shared subscription it goes through (null: a plain one). */
  shared: Subscription | null,
) => void;

/** The members of one shared group that match the message being routed. */
interface SharedGroup {
  members: Subscription[];
}

/** A shared group that has members: how many, and whose turn is next (round robin). */
interface GroupTurn {
  members: number;
  next: number;
}

const groupKey = (group: string, topicFilter: string): string => `${group}\u0000${topicFilter}`;

/**
 * Finds who gets a message. A client with several matching subscriptions gets it once, at the
 * highest granted QoS, with every subscription identifier [MQTT-3.3.4-2, -3]; No Local skips
 * the publisher; each shared group picks one member, round robin, preferring connected ones.
 */
export class Router {
  private msg: BrokerMessage | null = null;
  private single: Subscription | null = null;
  private multi: Map<Session, Merged> | null = null;
  private groups: Map<string, SharedGroup> | null = null;
  /**
   * Each shared group with members, kept across messages; a group goes with its last member,
   * so the map is bounded by the subscriptions, not by every group name ever used.
   */
  private readonly turns = new Map<string, GroupTurn>();

  constructor(
    private readonly trie: SubscriptionTrie<Subscription>,
    private readonly deliver: Deliver,
  ) {}

  /** Routes `msg`; returns how many sessions it went to. */
  route(msg: BrokerMessage): number {
    this.msg = msg;
    this.single = null;
    this.multi = null;
    this.groups = null;
    this.trie.forEachMatch(msg.topic, this.collect);
    let count = 0;
    const single = this.single as Subscription | null;
    if (single !== null) {
      this.deliverOne(single, msg, null);
      count = 1;
    }
    // The collector filled these; the compiler cannot see that through the callback.
    const multi = this.multi as Map<Session, Merged> | null;
    if (multi !== null) {
      for (const [session, m] of multi) this.deliver(session, msg, m.qos, m.retain, m.ids, null);
      count = multi.size;
    }
    const groups = this.groups as Map<string, SharedGroup> | null;
    if (groups !== null) {
      for (const [key, group] of groups) {
        const member = this.pick(key, group);
        this.deliverOne(member, msg, member);
        count++;
      }
    }
    this.msg = null;
    return count;
  }

  /** How many shared groups have members. */
  get groupCount(): number {
    return this.turns.size;
  }

  /** A new shared subscription joined `group` on `topicFilter`. */
  joinGroup(group: string, topicFilter: string): void {
    const key = groupKey(group, topicFilter);
    const turn = this.turns.get(key);
    if (turn === undefined) this.turns.set(key, { members: 1, next: 0 });
    else turn.members++;
  }

  /** A shared subscription left its group: the group and its turn go with the last member. */
  leaveGroup(group: string, topicFilter: string): void {
    const key = groupKey(group, topicFilter);
    const turn = this.turns.get(key);
    if (turn !== undefined && --turn.members === 0) this.turns.delete(key);
  }

  private readonly collect = (sub: Subscription): void => {
    const msg = this.msg!;
    if (sub.group !== null) {
      const key = groupKey(sub.group, sub.topicFilter);
      const groups = (this.groups ??= new Map());
      const group = groups.get(key);
      if (group === undefined) groups.set(key, { members: [sub] });
      else group.members.push(sub);
      return;
    }
    // [MQTT-3.8.3-3]: No Local keeps a client's own messages from it.
    if (sub.noLocal && sub.session.clientId === msg.publisher) return;
    if (this.single === null && this.multi === null) {
      this.single = sub;
      return;
    }
    let multi = this.multi;
    if (multi === null) {
      multi = this.multi = new Map();
      const first = this.single!;
      this.single = null;
      multi.set(first.session, this.merged(first, msg));
    }
    const seen = multi.get(sub.session);
    if (seen === undefined) {
      multi.set(sub.session, this.merged(sub, msg));
      return;
    }
    const qos = Math.min(msg.qos, sub.qos) as QoS;
    if (qos > seen.qos) seen.qos = qos;
    // One copy serves every matching subscription: RETAIN stays only if all of them keep it
    // [MQTT-3.3.1-12].
    if (!sub.retainAsPublished) seen.retain = false;
    if (sub.subscriptionIdentifier !== undefined)
      (seen.ids ??= []).push(sub.subscriptionIdentifier);
  };

  private merged(sub: Subscription, msg: BrokerMessage): Merged {
    return {
      qos: Math.min(msg.qos, sub.qos) as QoS,
      retain: sub.retainAsPublished && msg.retain,
      ids: sub.subscriptionIdentifier === undefined ? null : [sub.subscriptionIdentifier],
    };
  }

  private deliverOne(sub: Subscription, msg: BrokerMessage, shared: Subscription | null): void {
    // [MQTT-3.3.1-12]: RETAIN is 0 on forwarded messages unless Retain As Published.
    this.deliver(
      sub.session,
      msg,
      Math.min(msg.qos, sub.qos) as QoS,
      sub.retainAsPublished && msg.retain,
      sub.subscriptionIdentifier === undefined ? null : [sub.subscriptionIdentifier],
      shared,
    );
  }

  /**
   * Hands `msg` to one member of the shared group of `via` (round robin, preferring connected
   * ones), as routing would have; false when the group has no member matching it any more.
   */
  routeToGroup(via: Subscription, msg: BrokerMessage): boolean {
    const members: Subscription[] = [];
    this.trie.forEachMatch(msg.topic, (sub) => {
      if (sub.group === via.group && sub.topicFilter === via.topicFilter) members.push(sub);
    });
    if (members.length === 0) return false;
    const member = this.pick(groupKey(via.group!, via.topicFilter), { members });
    this.deliverOne(member, msg, member);
    return true;
  }

  private pick(key: string, group: SharedGroup): Subscription {
    const members = group.members;
    const turn = this.turns.get(key);
    const start = (turn?.next ?? 0) % members.length;
    // Prefer a member whose client is connected; fall back to the next in turn (queued).
    let chosen = start;
    for (let i = 0; i < members.length; i++) {
      const at = (start + i) % members.length;
      if (members[at]!.session.output !== null) {
        chosen = at;
        break;
      }
    }
    if (turn !== undefined) turn.next = chosen + 1;
    return members[chosen]!;
  }
}
