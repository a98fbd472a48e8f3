/**
 * The Standard Schema and Standard JSON Schema interfaces (https://standardschema.dev, v1.1),
 * copied here as the spec invites ("you can copy the types into your library") rather than
 * imported from `@standard-schema/spec`: a type import would appear in Oven's published `.d.ts`,
 * and a user without that package installed would see Oven's contract types turn into errors or
 * `any`. The interfaces are structural, so zod 4, valibot and arktype schemas fit them as they
 * are (test/types/contracts.test-d.ts checks that they stay identical to the spec package's).
 * Only what Oven reads is copied.
 *
 * @module
 */

/** A Standard Schema: any validation library's schema that exposes `~standard`. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly '~standard': StandardSchemaV1.Props<Input, Output>
}

/** The types of the Standard Schema interface. */
export declare namespace StandardSchemaV1 {
  /** The Standard Schema properties. */
  interface Props<Input = unknown, Output = Input> {
    /** The version number of the standard. */
    readonly version: 1
    /** The vendor name of the schema library (`"zod"`, `"valibot"`, `"arktype"`). */
    readonly vendor: string
    /** Validates an unknown value: the result, or a promise of it for an async schema. */
    readonly validate: (
      value: unknown,
      options?: Options | undefined,
    ) => Result<Output> | Promise<Result<Output>>
    /** The inferred types, for TypeScript only. */
    readonly types?: Types<Input, Output> | undefined
  }
  /** The result of `validate`. */
  type Result<Output> = SuccessResult<Output> | FailureResult
  /** A successful validation. */
  interface SuccessResult<Output> {
    /** The typed output value. */
    readonly value: Output
    /** A falsy value for `issues` indicates success. */
    readonly issues?: undefined
  }
  /** Options of `validate`. */
  interface Options {
    /** Vendor-specific parameters. */
    readonly libraryOptions?: Record<string, unknown> | undefined
  }
  /** A failed validation. */
  interface FailureResult {
    /** The issues of failed validation. */
    readonly issues: ReadonlyArray<Issue>
  }
  /** One issue of a failed validation. */
  interface Issue {
    /** The error message of the issue. */
    readonly message: string
    /** The path of the issue, if any. */
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined
  }
  /** A path segment of an issue. */
  interface PathSegment {
    /** The key representing a path segment. */
    readonly key: PropertyKey
  }
  /** The inferred input and output types. */
  interface Types<Input = unknown, Output = Input> {
    /** The input type of the schema. */
    readonly input: Input
    /** The output type of the schema. */
    readonly output: Output
  }
  /** The input type of a schema. */
  type InferInput<Schema extends StandardSchemaV1> = NonNullable<
    Schema['~standard']['types']
  >['input']
  /** The output type of a schema. */
  type InferOutput<Schema extends StandardSchemaV1> = NonNullable<
    Schema['~standard']['types']
  >['output']
}

/**
 * A Standard JSON Schema: a schema that can describe itself as JSON Schema (zod 4 and arktype
 * implement it on their schemas; valibot through `toStandardJsonSchema` of
 * `@valibot/to-json-schema`).
 */
export interface StandardJSONSchemaV1<Input = unknown, Output = Input> {
  /** The Standard JSON Schema properties. */
  readonly '~standard': StandardJSONSchemaV1.Props<Input, Output>
}

/** The types of the Standard JSON Schema interface. */
export declare namespace StandardJSONSchemaV1 {
  /** The Standard JSON Schema properties. */
  interface Props<Input = unknown, Output = Input> {
    /** The version number of the standard. */
    readonly version: 1
    /** The vendor name of the schema library. */
    readonly vendor: string
    /** The inferred types, for TypeScript only. */
    readonly types?: StandardSchemaV1.Types<Input, Output> | undefined
    /** Generates the JSON Schema of the input or output type. */
    readonly jsonSchema: Converter
  }
  /** Generates JSON Schema; may throw when the schema cannot be described. */
  interface Converter {
    /** The JSON Schema of the input type. */
    readonly input: (options: Options) => Record<string, unknown>
    /** The JSON Schema of the output type. */
    readonly output: (options: Options) => Record<string, unknown>
  }
  /** The JSON Schema version to generate. */
  type Target = 'draft-2020-12' | 'draft-07' | 'openapi-3.0' | ({} & string)
  /** Options of the converter. */
  interface Options {
    /** The JSON Schema version to generate. */
    readonly target: Target
    /** Vendor-specific parameters. */
    readonly libraryOptions?: Record<string, unknown> | undefined
  }
}
