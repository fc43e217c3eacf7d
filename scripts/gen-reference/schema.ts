/** The configuration schemas as the reference walks them: zod to JSON Schema, then sections and settings. */
import { z } from 'zod'

/** A JSON Schema node as z.toJSONSchema makes it (the input side: defaults as written). */
export interface Node {
  type?: string
  description?: string
  default?: unknown
  enum?: unknown[]
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  minLength?: number
  maxLength?: number
  minItems?: number
  format?: string
  items?: Node
  anyOf?: Node[]
  properties?: Record<string, Node>
  required?: string[]
}

/** A setting, a leaf of the schema. */
export interface Leaf {
  path: string[]
  node: Node
}

/** A section: an object of the schema, with its settings and its subsections. */
export interface Section {
  path: string[]
  node: Node
  leaves: Leaf[]
  sections: Section[]
}

/** The schema as JSON Schema, its input side (defaults as written; what zod cannot say, any). */
export const jsonSchema = (schema: z.ZodType): Node =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Node

/** An object whose keys are all required (no defaults of their own) is one setting, not a section. */
const isSection = (n: Node): boolean =>
  n.properties !== undefined && (n.required?.length ?? 0) < Object.keys(n.properties).length

/** The sections and settings under `node`, found at path `at`. */
export function walk(node: Node, at: string[]): Section {
  const section: Section = { path: at, node, leaves: [], sections: [] }
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    if (isSection(child)) section.sections.push(walk(child, [...at, key]))
    else section.leaves.push({ path: [...at, key], node: child })
  }
  return section
}

/** Every setting of a section and its subsections, in order. */
export function leavesOf(s: Section): Leaf[] {
  return [...s.leaves, ...s.sections.flatMap(leavesOf)]
}
