// Host scripts of `persist`: write a resource's unit and script (see core/persistence.ts) under our marker, link
// them where systemd looks, and have a running systemd load and start the unit; report whether what is on the
// host is what the resource wants; remove them again. One set of scripts for every resource that persists.
import { Buffer } from "node:buffer";
import { PersistPlan, UNIT_DIR, persistPaths } from "../core/persistence";
import { EXIT, MARK } from "./protocol";
import * as shell from "./shell";

/** UNIT_NAME, UNIT_PATH, SCRIPT_PATH, the texts and WANTED_BY of a plan, and the marker of its unit. */
function vars(
  paths: Pick<PersistPlan, "unit" | "unitPath" | "scriptPath">,
  owner: shell.Ownership,
  plan?: PersistPlan,
): string {
  return shell.script(
    shell.assignments({
      UNIT_NAME: paths.unit,
      UNIT_PATH: paths.unitPath,
      SCRIPT_PATH: paths.scriptPath,
      // Base64: the texts are data (a script full of quotes and `$`), never part of this script's syntax.
      UNIT_TEXT_B64: Buffer.from(plan?.unitText ?? "").toString("base64"),
      SCRIPT_TEXT_B64: Buffer.from(plan?.scriptText ?? "").toString("base64"),
      WANTED_BY: plan?.wantedBy.join(" ") ?? "",
    }),
    shell.ownerVariables(owner, "unit", paths.unit),
  );
}

/** Defines `systemd_runs`: whether systemd is PID 1 here (sd_booted(3): /run/systemd/system exists). */
const SYSTEMD_RUNS = String.raw`systemd_runs() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
`;

/**
 * Reads the variables of `vars`. Prints persisted=current (unit, script and every wants-link as the resource
 * wants them, under our marker), missing (none of them there) or stale (anything else, e.g. a unit left by an
 * older configuration, or a link gone).
 */
const REPORT = String.raw`state=current
if [ ! -e "$UNIT_PATH" ] && [ ! -e "$SCRIPT_PATH" ]; then state=missing
elif [ -z "$UNIT_TEXT_B64" ] || ! ours; then state=stale
elif ! printf '%s' "$UNIT_TEXT_B64" | base64 -d | cmp -s - "$UNIT_PATH" || ! printf '%s' "$SCRIPT_TEXT_B64" | base64 -d | cmp -s - "$SCRIPT_PATH"; then state=stale
else
  for target in $WANTED_BY; do
    [ "$(readlink "${UNIT_DIR}/$target.wants/$UNIT_NAME" 2>/dev/null)" = "$UNIT_PATH" ] || state=stale
  done
fi
${shell.result("persisted", "$state")}`;

/**
 * Writes the unit and its script (atomically, each as a whole), links it into the `.wants/` of each unit that
 * wants it, and where systemd runs reloads it and starts the unit without waiting (its script takes our host
 * lock, which this script holds). Refuses a unit of that name that is not ours.
 */
export function persistApplyScript(plan: PersistPlan, owner: shell.Ownership): string {
  return shell.changingScript(
    ["flock", "cmp", "base64"],
    vars(plan, owner, plan),
    SYSTEMD_RUNS,
    String.raw`if [ -e "$UNIT_PATH" ] && ! ours; then
  echo "${MARK.clash} unit $UNIT_PATH on the host is not ours: $(not_ours)" >&2
  exit ${EXIT.refused}
fi
claim
mkdir -p "${UNIT_DIR}" "$(dirname "$SCRIPT_PATH")"
chmod 0700 "$(dirname "$SCRIPT_PATH")"
printf '%s' "$SCRIPT_TEXT_B64" | base64 -d > "$SCRIPT_PATH.new"
chmod 0700 "$SCRIPT_PATH.new"
mv -f "$SCRIPT_PATH.new" "$SCRIPT_PATH"
printf '%s' "$UNIT_TEXT_B64" | base64 -d > "$UNIT_PATH.new"
chmod 0644 "$UNIT_PATH.new"
mv -f "$UNIT_PATH.new" "$UNIT_PATH"
for link in "${UNIT_DIR}"/*.wants/"$UNIT_NAME"; do
  [ -L "$link" ] || continue
  case " $WANTED_BY " in *" $(basename "$(dirname "$link")" .wants) "*) ;; *) rm -f "$link" ;; esac
done
for target in $WANTED_BY; do
  mkdir -p "${UNIT_DIR}/$target.wants"
  ln -sfn "$UNIT_PATH" "${UNIT_DIR}/$target.wants/$UNIT_NAME"
done
if systemd_runs; then
  systemctl daemon-reload
  systemctl start --no-block "$UNIT_NAME"
fi`,
    REPORT,
  );
}

/** Reports `persisted` for the object's unit; changes nothing. `plan` is undefined when persist is off. */
export function persistReadScript(
  kind: string,
  name: string,
  plan: PersistPlan | undefined,
  owner: shell.Ownership,
): string {
  return shell.reportingScript(vars(plan ?? persistPaths(kind, name), owner, plan), REPORT);
}

/**
 * Removes the object's unit, its links and script if they are ours (else reports what it left and why), and
 * where systemd runs stops the unit (it has no ExecStop: what it restored stays) and reloads. Succeeds when gone.
 */
export function persistRemoveScript(kind: string, name: string, owner: shell.Ownership): string {
  return shell.changingScript(
    ["flock"],
    vars(persistPaths(kind, name), owner),
    SYSTEMD_RUNS,
    String.raw`if [ ! -e "$UNIT_PATH" ] && [ ! -e "$SCRIPT_PATH" ]; then rm -f "$OWNER_MARKER"; exit 0; fi
if ! ours; then
  ${shell.result("leftBehind", "unit $UNIT_PATH: $(not_ours)")}
  exit 0
fi
rm -f "${UNIT_DIR}"/*.wants/"$UNIT_NAME" "$UNIT_PATH" "$SCRIPT_PATH" "$OWNER_MARKER"
if systemd_runs; then
  systemctl stop --no-block "$UNIT_NAME" 2>/dev/null || true
  systemctl daemon-reload
fi`,
  );
}
