"""CDK entry point. The collector's stacks are composed here from `cdk.json` context.

The stacks arrive with the infrastructure issue; until then the app synthesizes an empty assembly.
"""

import aws_cdk as cdk


def main() -> None:
    app = cdk.App()
    app.synth()


if __name__ == "__main__":
    main()
