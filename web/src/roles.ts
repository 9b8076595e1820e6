// What a project role may do (the server's roles.py decides; the pages only hide what would be refused).

export const ROLES = ["viewer", "annotator", "reviewer", "admin"] as const;
const NEEDS: Record<string, number> = { read: 0, annotate: 1, review: 2, run: 2, manage: 3 };

/** Whether `role` (null: a site admin who is no member) may do `action`; site admins may do anything. */
export function may(role: string | null, action: keyof typeof NEEDS, siteAdmin = false): boolean {
  if (siteAdmin) return true;
  const rank = ROLES.indexOf((role ?? "") as (typeof ROLES)[number]);
  return rank >= 0 && rank >= NEEDS[action];
}
