// Local topics for connections the engine's topics cannot hold (HTTP fallback
// sessions): the same topic names, a JS set per topic. Fan-out asks it only while it
// holds a topic at all, so WebSocket-only nodes pay one size check per delivery.

/** A connection that takes topic frames from here rather than from the engine. */
export interface TopicMember {
  /** A frame published to one of its topics; counted by fan-out, not per connection. */
  receiveTopicFrame(frame: string): void;
}

export class SessionTopics {
  private readonly byTopic = new Map<string, Set<TopicMember>>();

  /** topics with at least one member */
  get size(): number {
    return this.byTopic.size;
  }

  subscribe(topic: string, member: TopicMember): void {
    let set = this.byTopic.get(topic);
    if (!set) this.byTopic.set(topic, (set = new Set()));
    set.add(member);
  }

  unsubscribe(topic: string, member: TopicMember): void {
    const set = this.byTopic.get(topic);
    if (!set || !set.delete(member)) return;
    if (set.size === 0) this.byTopic.delete(topic);
  }

  count(topic: string): number {
    return this.byTopic.get(topic)?.size ?? 0;
  }

  /** To every member of the topic but `except`. */
  publish(topic: string, frame: string, except: TopicMember | null): void {
    const set = this.byTopic.get(topic);
    if (!set) return;
    for (const m of set) if (m !== except) m.receiveTopicFrame(frame);
  }
}
