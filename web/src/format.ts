// How messages and events read in the list and the chat.
import { EventType, type Event, type Message } from "@actorim/sdk";

/** One line for a system event, from `me`'s point of view. */
export function describeEvent(ev: Event, me: string): string {
  const who = (u: string) => (u === me ? "you" : u);
  const actor = who(ev.actor);
  const users = ev.users.map(who).join(", ");
  switch (ev.type) {
    case EventType.EVENT_FRIEND_REQUEST:
      return `${actor} sent a friend request${ev.note ? ": " + ev.note : ""}`;
    case EventType.EVENT_FRIEND_ADDED:
      return `${actor} accepted the friend request`;
    case EventType.EVENT_FRIEND_REJECTED:
      return `${actor} declined the friend request`;
    case EventType.EVENT_FRIEND_DELETED:
      return `${actor} ended the friendship`;
    case EventType.EVENT_GROUP_CREATED:
      return `${actor} created the group ${ev.group?.name || ev.groupId} with ${users}`;
    case EventType.EVENT_GROUP_UPDATED:
      return `${actor} updated the group`;
    case EventType.EVENT_MEMBER_JOINED:
      return `${users} joined`;
    case EventType.EVENT_MEMBER_LEFT:
      return `${users} left`;
    case EventType.EVENT_MEMBER_KICKED:
      return `${actor} removed ${users}`;
    case EventType.EVENT_GROUP_DISSOLVED:
      return `${actor} dissolved the group`;
    case EventType.EVENT_RECALLED:
      return `${who(ev.users[0] ?? ev.actor)} recalled a message`;
    case EventType.EVENT_READ:
      return `${actor} read`;
    default:
      return `${actor}: ${EventType[ev.type]?.replace(/^EVENT_/, "").toLowerCase().replace(/_/g, " ") ?? "event"}`;
  }
}

/** The text shown for a message (its content, or what it is). */
export function messageText(m: Message, me: string): string {
  if (m.recalled) return "message recalled";
  const k = m.content?.kind;
  switch (k?.$case) {
    case "text":
    case "emoji":
      return k.value;
    case "event":
      return describeEvent(k.value, me);
    case "image":
      return "[image]";
    case "audio":
      return "[audio]";
    case "video":
      return "[video]";
    case "file":
      return `[file ${k.value.name}]`;
    case "custom":
      return `[${k.value.type}]`;
    default:
      return "";
  }
}

export function timeOf(ms: bigint): string {
  return new Date(Number(ms)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
